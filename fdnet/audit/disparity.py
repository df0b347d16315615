"""Moved to :mod:`fdnet.lists.disparity` (the disparity table is made with the lists); kept for old imports."""
from ..lists.disparity import *  # noqa: F401,F403
from ..lists.disparity import (AGE_BANDS, COLUMNS, ENFORCEMENT_LISTS, FLOAT_COLUMNS, METHOD, UNKNOWN,  # noqa: F401
                               age_band, disparity_summary, disparity_table)

"""Records stage: read the input folder, apply the mapping, validate every row.

The entry point is :func:`load_records`; see :mod:`fdnet.records.validate`.
"""
from .schema import OFFENDING_ROLES, ROLES
from .validate import Records, day_to_iso, iso_to_day, load_records

__all__ = ["Records", "load_records", "day_to_iso", "iso_to_day", "ROLES", "OFFENDING_ROLES"]

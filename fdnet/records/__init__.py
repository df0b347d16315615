"""Records stage: read the input folder, apply the mapping, validate every row.

>>> from fdnet.records import load_records  # doctest: +SKIP
"""
from .schema import OFFENDING_ROLES, ROLES
from .validate import Records, day_to_iso, iso_to_day, load_records

__all__ = ["Records", "load_records", "day_to_iso", "iso_to_day", "ROLES", "OFFENDING_ROLES"]

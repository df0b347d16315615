"""Making input strings safe for the formats they are exported to.

Person IDs, group names and reasons come from police records: any string
can arrive. Two hazards matter for exports:

* **XML** (GraphML, GEXF, the XML inside XLSX) cannot hold most control
  characters at all; :func:`xml_safe` replaces them with U+FFFD so the file
  stays well-formed (``<``, ``&`` and quotes are escaped by the XML writers).
* **Spreadsheet formulas**: a cell starting with ``=``, ``+``, ``-``, ``@``,
  tab or carriage return may be run as a formula when a CSV is opened in a
  spreadsheet (OWASP "CSV injection"). The XLSX writer stores such cells as
  literal text with Excel's quote prefix; every CSV (run folder and exports
  alike) is written by :func:`fdnet.tables.csv_bytes`, which puts an
  apostrophe in front. The rule is defined once, in :mod:`fdnet.tables`;
  the names below are re-exported from there.

>>> xml_safe("a\\x00b\\x1fc\\td")
'a\\ufffdb\\ufffdc\\td'
>>> neutralise_formula('=HYPERLINK("http://x","y")'), neutralise_formula("P1"), neutralise_formula("-5")
('\\'=HYPERLINK("http://x","y")', 'P1', "'-5")
"""
from __future__ import annotations

import re

from ..tables import FORMULA_STARTS, escape_cell, starts_like_formula  # noqa: F401  (the one definition)

_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")

#: one text cell as every fdnet CSV writes it (:func:`fdnet.tables.escape_cell`)
neutralise_formula = escape_cell


def xml_safe(s: str) -> str:
    """``s`` with characters XML 1.0 cannot hold replaced by U+FFFD."""
    return _XML_ILLEGAL.sub("\ufffd", s)

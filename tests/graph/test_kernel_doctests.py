"""The Cython kernels' docstring examples (pytest cannot collect doctests from a compiled module)."""
import doctest

import fdnet._core


def test_core_docstring_examples():
    res = doctest.testmod(fdnet._core, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert res.attempted >= 20
    assert res.failed == 0

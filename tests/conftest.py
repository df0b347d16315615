"""Shared test set-up: tests/ mirrors the package (tests/graph for fdnet/graph, ...);
every test module can import the small fixtures in tests/helpers.py."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

"""Synthetic cities: police records generated from a documented model, with the truth.

``fdnet synth`` and ``fdnet demo`` use :func:`generate_city` and :func:`write_city`;
docs/synthetic-city.md describes the model.
"""
from .city import (INPUT_TABLES, OFFENSES, CityParams, SynthCity, generate_city,
                   generate_city_with, write_city)

__all__ = ["SynthCity", "CityParams", "generate_city", "generate_city_with", "write_city",
           "OFFENSES", "INPUT_TABLES"]

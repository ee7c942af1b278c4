"""Measurements for claims: finite_data (filled in by its owner)."""

"""Measurements for claims: scaling (filled in by its owner)."""

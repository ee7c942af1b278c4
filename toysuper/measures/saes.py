"""Measurements for claims: saes (filled in by its owner)."""

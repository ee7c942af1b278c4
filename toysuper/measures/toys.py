"""Measurements for claims: toys (filled in by its owner)."""

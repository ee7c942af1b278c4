"""Measurements for claims: computation (filled in by its owner)."""

"""Measurements for claims: privileged (filled in by its owner)."""

"""Measurements for claims: llc (filled in by its owner)."""

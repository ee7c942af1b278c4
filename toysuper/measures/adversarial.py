"""Measurements for claims: adversarial (filled in by its owner)."""

"""Hostile archives: refused or contained (filled in by tests/fixtures/mkhostile.py)."""

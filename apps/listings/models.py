"""Listings (filled in by #7)."""

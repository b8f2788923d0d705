"""Filled in by the marketplace work (#7)."""

from ninja import Router

router = Router(tags=["installs"])

"""Authorization-table rows of this area (see tests/orgs/marketplace_endpoints.py)."""

from __future__ import annotations

from tests.orgs.endpoint import API, ORG, Endpoint  # noqa: F401

ENDPOINTS: list[Endpoint] = []


def make_targets(tenant, targets) -> dict:
    return {}


def snapshot(org) -> dict:
    return {}

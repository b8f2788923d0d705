"""Fixtures of the event ingestion tests (tests/events/test_ingest*.py)."""

from __future__ import annotations

import pytest

from apps.events.catalog_sync import sync_catalog
from apps.orgs.models import Organization
from tests.conftest import ApiClient, issue_token


@pytest.fixture
def event_catalog(db):
    """The shipped catalog: order.created, order.fulfilled, customer.created (v2 marks personal data)."""
    sync_catalog()


@pytest.fixture
def platform(db) -> Organization:
    """The platform organisation (the company running Plaza), with no members of its own here."""
    from tests.factories import OrganizationFactory

    return OrganizationFactory(slug="plaza-platform", name="Plaza Platform", is_platform=True)


@pytest.fixture
def host_api(platform, event_catalog) -> ApiClient:
    """The host product: a token of the platform organisation holding ``events:host``."""
    return ApiClient(issue_token(platform, role="developer", scopes=["events:host"]))


@pytest.fixture
def tenant_api(acme, event_catalog) -> ApiClient:
    """acme's own integration: a developer token with ``events:write``."""
    return ApiClient(issue_token(acme.org, role="developer", scopes=["events:write"]))


@pytest.fixture
def log_api(acme) -> ApiClient:
    """An admin token of acme that reads the event log."""
    return ApiClient(issue_token(acme.org, role="admin", scopes=["events:read"]))


def fulfilled(order_id: str = "ord_1", **extra) -> dict:
    """A valid ``order.fulfilled`` event."""
    return {
        "type": "order.fulfilled",
        "payload": {"order_id": order_id, "fulfilled_at": "2026-11-02T15:00:00Z"},
        **extra,
    }


def created(order_id: str = "ord_1") -> dict:
    """A valid ``order.created`` event."""
    return {
        "type": "order.created",
        "payload": {
            "order_id": order_id,
            "customer_id": "cus_42",
            "currency": "EUR",
            "total": "59.90",
            "line_items": [{"sku": "TEE", "quantity": 2, "unit_price": "29.95"}],
            "created_at": "2026-11-01T09:30:00Z",
        },
    }

"""Fixtures and helpers of the endpoint, replay, portal and API tests (no tests here).

- ``vendor`` (vera@vendor.test owner) publishes ``vendor.order-tagger`` subscribing to
  ``order.created``; ``acme`` (alice owner) installs it; ``globex`` (charlie) is the outsider.
- ``setup`` bundles them with a production endpoint of the extension and its first secret.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest

from apps.core import clock
from apps.events.models import Event, EventType
from apps.webhooks.models import Attempt, AttemptOutcome, Endpoint, Message, MessageStatus
from apps.webhooks.services import endpoints as services
from apps.webhooks.services.fanout import messages_for_event
from tests.conftest import Tenant
from tests.installs.conftest import Vendor, event_catalog, vendor  # noqa: F401  (fixtures)
from tests.installs.support import installed, person, session

SCOPES = ["events:read:order.created", "kv:read"]
ORDER = {
    "order_id": "o-1",
    "customer_id": "c-1",
    "currency": "EUR",
    "total": "10.00",
    "line_items": [],
    "created_at": "2026-01-01T00:00:00Z",
}


@dataclass
class Setup:
    vendor: Vendor
    customer: Tenant
    version: object
    installation: object
    endpoint: Endpoint
    secret: str

    @property
    def extension(self):
        return self.version.extension

    @property
    def publisher(self):
        return self.vendor.tenant


def event(org, *, type_name: str = "order.created", at: dt.datetime | None = None, payload: dict | None = None):
    at = at or clock.now()
    return Event.objects.create(
        org=org,
        event_type=EventType.objects.get(name=type_name),
        schema_version=1,
        payload=payload or ORDER,
        occurred_at=at,
        received_at=at,
        source="host",
    )


def fan_out(evt) -> list[Message]:
    """The event's webhook messages (the fan-out also makes sandbox hook runs for module hooks)."""
    return [m for m in messages_for_event(evt) if m.kind == "webhook"]


def failed(message: Message, *, at: dt.datetime | None = None, attempts: int = 8) -> Message:
    """Mark ``message`` as given up (the dead-letter queue), with one recorded attempt."""
    at = at or clock.now()
    Message.objects.filter(pk=message.pk).update(
        status=MessageStatus.FAILED, attempts=attempts, failed_at=at, last_error="HTTP 500", last_status_code=500
    )
    Attempt.objects.create(
        message_id=message.pk,
        number=attempts,
        url="https://hooks.vendor.example/plaza",
        request_headers={"webhook-id": message.pk},
        status_code=500,
        response_excerpt="oops",
        error_class="http_status",
        outcome=AttemptOutcome.FAILED,
        duration_ms=12,
    )
    message.refresh_from_db()
    return message


@pytest.fixture
def setup(vendor, acme) -> Setup:  # noqa: F811
    version = vendor.release(scopes=SCOPES)
    inst = installed(session(acme.owner), acme.org, version)
    # Installed a week ago: the tests' events of the last days reach it (a backfill never sends
    # an installation what its tenant sent before it was installed).
    type(inst).objects.filter(pk=inst.pk).update(installed_at=clock.now() - dt.timedelta(days=7))
    inst.refresh_from_db()
    endpoint, secret = services.endpoint_create(
        principal=person(vendor.tenant.owner), extension=version.extension, url="https://hooks.vendor.example/plaza"
    )
    return Setup(vendor=vendor, customer=acme, version=version, installation=inst, endpoint=endpoint, secret=secret)


__all__ = ["Setup", "event", "event_catalog", "fan_out", "failed", "person", "setup", "vendor", "ORDER", "SCOPES"]

"""The webhooks area's share of the authorization and tenant-isolation tables (no tests here).

For ``tests/orgs/marketplace_endpoints.py``: add this module to ``AREAS`` (after the installs
areas: the deliveries rows use the installation ``tests/installs/endpoints.py`` makes). It follows
the contract described there: ``ENDPOINTS``, ``make_targets``, ``snapshot``, ``PORTAL_ACTIONS``,
``OTHER_KIND`` and ``fuzz_targets``.

The target tenant publishes ``targets.extension`` (given a version that subscribes to
``order.created``), has one endpoint of it with a message in the dead-letter queue (for the
installs area's installation when there is one) and one finished replay job.
"""

from __future__ import annotations

import datetime as dt

from apps.core import clock
from apps.extensions.models import ExtensionVersion
from apps.installs.models import Installation
from apps.webhooks.models import Endpoint, EndpointSecret, Message, MessageStatus, ReplayJob
from apps.webhooks.services import endpoints as endpoint_services
from tests.orgs.endpoint import ORG
from tests.orgs.endpoint import Endpoint as Row

EXT = f"{ORG}/extensions/{{extension_id}}/webhook-endpoints"
ONE = f"{EXT}/{{endpoint_id}}"
DELIVERIES = f"{ORG}/installations/{{installation_id}}/deliveries"
VIEW, MANAGE, MESSAGES, REPLAY = (
    "webhook_endpoint.view",
    "webhook_endpoint.manage",
    "webhook_message.view",
    "webhook.replay",
)


def _replay_body(kind: str) -> dict:
    """A range starting a day before the module loads (test runs are shorter than that)."""
    return {"kind": kind, "since": (clock.now() - dt.timedelta(days=1)).isoformat()}


ENDPOINTS: list[Row] = [
    Row("GET", EXT, (VIEW,)),
    Row("POST", EXT, (MANAGE,), ok=201, body={"url": "https://new.hooks.example.com/plaza"}),
    Row("GET", ONE, (VIEW,)),
    Row("PATCH", ONE, (MANAGE,), body={"description": "Changed"}),
    Row("DELETE", ONE, (MANAGE,), ok=204),
    Row("POST", f"{ONE}/rotate-secret", (MANAGE,), body={"overlap_hours": 1}),
    Row("POST", f"{ONE}/enable", (MANAGE,), body={}),
    Row("POST", f"{ONE}/disable", (MANAGE,), body={"reason": "test"}),
    Row("POST", f"{ONE}/test", (MANAGE,), ok=201, body={}),
    Row("GET", f"{ONE}/messages", (MESSAGES,)),
    Row("GET", f"{ONE}/messages/{{message_id}}", (MESSAGES,)),
    Row("POST", f"{ONE}/messages/{{message_id}}/replay", (REPLAY,), ok=202, body={}),
    Row("POST", f"{ONE}/replays/preview", (REPLAY,), body=_replay_body("failed_since")),
    Row("POST", f"{ONE}/replays", (REPLAY,), ok=202, body=_replay_body("failed_since")),
    Row("GET", f"{ONE}/replays", (VIEW,)),
    Row("GET", f"{ONE}/replays/{{replay_id}}", (VIEW,)),
    # the customer's side
    Row("GET", DELIVERIES, ("installation.deliveries.view",)),
    Row("GET", f"{DELIVERIES}/{{message_id}}", ("installation.deliveries.view",)),
]


def _subscribing_version(extension, key) -> None:
    """A draft of ``extension`` that declares events:read:order.created, so endpoints may filter
    on it and test events have a type."""
    if not ExtensionVersion.objects.filter(extension=extension, version="0.0.1-webhooks").exists():
        ExtensionVersion.objects.create(
            extension=extension,
            version="0.0.1-webhooks",
            manifest={"id": extension.key, "version": "0.0.1-webhooks"},
            scopes=["events:read:order.created"],
            package_sha256="0" * 64,
            package_size=1,
            signing_key=key,
            signature="x",
        )


def make_targets(tenant, targets) -> dict:
    extension, org = targets.extension, tenant.org
    _subscribing_version(extension, targets.signing_key)
    endpoint, _ = endpoint_services.endpoint_create(
        principal=None, extension=extension, url=f"https://{org.slug}.hooks.example.com/plaza"
    )
    installation = (
        Installation.objects.filter(org=org, extension=extension).exclude(status="uninstalled").order_by("pk").first()
    )
    message = Message.objects.create(
        org=org,
        installation=installation,
        endpoint=endpoint,
        event_type="order.created",
        body='{"type":"order.created","data":{}}',
        status=MessageStatus.FAILED,
        attempts=8,
        failed_at=clock.now(),
        last_error="HTTP 500",
    )
    job = ReplayJob.objects.create(endpoint=endpoint, kind="message", params={"message_id": message.pk}, status="done")
    return {"endpoint_id": endpoint.pk, "message_id": message.pk, "replay_id": job.pk}


def snapshot(org) -> dict:
    endpoints = Endpoint.objects.filter(extension__org=org)
    return {
        "webhook_endpoints": list(endpoints.order_by("pk").values()),
        "webhook_secrets": list(
            EndpointSecret.objects.filter(endpoint__in=endpoints).order_by("pk").values("id", "expires_at")
        ),
        "webhook_messages": list(
            Message.objects.filter(endpoint__in=endpoints).order_by("pk").values("id", "status", "next_attempt_at")
        ),
        "webhook_replays": list(ReplayJob.objects.filter(endpoint__in=endpoints).order_by("pk").values()),
    }


# Pages about one object, for the portal's tenant-isolation tests (tests/orgs/test_tenant_isolation.py).
PORTAL_ACTIONS = {
    "webhook_endpoints": ("extension_id",),
    "webhook_endpoint": ("endpoint_id",),
    "webhook_message": ("endpoint_id", "message_id"),
    "webhook_replay": ("endpoint_id",),
    "installation_deliveries": ("installation_id",),
    "installation_delivery": ("installation_id", "message_id"),
}
OTHER_KIND = {
    "endpoint_id": lambda t: t.extension.pk,
    "message_id": lambda t: t.extra["endpoint_id"],
    "replay_id": lambda t: t.extra["message_id"],
}


def fuzz_targets(tenant, ids: dict) -> dict:
    """An endpoint, a message and a replay job for the API fuzzer (tests/test_api_fuzz.py)."""
    from types import SimpleNamespace

    from apps.extensions.models import Extension, SigningKey

    extension = Extension.objects.get(pk=ids["extension_id"][0])
    key = SigningKey.objects.filter(org=extension.org).first()
    made = make_targets(tenant, SimpleNamespace(org=tenant.org, extension=extension, signing_key=key, extra={}))
    return {name: [value] for name, value in made.items()}

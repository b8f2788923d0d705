"""Endpoint management services: create (URL and event-type checks), update, disable/enable,
delete, secret rotation with an overlap, test events, and the manifest's hooks with a url."""

from __future__ import annotations

import datetime as dt

import pytest
from standardwebhooks.webhooks import Webhook

from apps.audit.models import AuditEvent
from apps.core import clock
from apps.core.errors import Conflict, RateLimited, ValidationFailed
from apps.webhooks import signing
from apps.webhooks.models import (
    CircuitState,
    Endpoint,
    EndpointSecret,
    EndpointSource,
    EndpointStatus,
    Message,
    MessageStatus,
)
from apps.webhooks.services import endpoints as services
from tests.installs.support import sandbox_of
from tests.webhooks import test_endpoints_fixtures as fx
from tests.webhooks.test_endpoints_fixtures import SCOPES, event, fan_out, person

# fixtures
event_catalog = fx.event_catalog
setup = fx.setup
vendor = fx.vendor


def actions(org) -> list[str]:
    return list(AuditEvent.objects.filter(org_id=org.pk).order_by("seq").values_list("action", flat=True))


# --- create --------------------------------------------------------------------------------------
def test_create_returns_the_secret_once_and_stores_it_encrypted(setup):
    row = EndpointSecret.objects.get(endpoint=setup.endpoint)
    assert setup.secret.startswith("whsec_") and row.last4 == setup.secret[-4:]
    assert setup.secret not in row.secret_encrypted
    assert services.secret_plaintexts(setup.endpoint) == [setup.secret]
    assert "webhook_endpoint.created" in actions(setup.publisher.org)
    audit = AuditEvent.objects.filter(action="webhook_endpoint.created").first()
    assert setup.secret not in str(audit.changes)


@pytest.mark.parametrize(
    "url, code",
    [
        ("http://hooks.example.com/x", "url_not_https"),
        ("ftp://hooks.example.com/x", "url_not_https"),
        ("https://user:pw@hooks.example.com/x", "url_credentials"),
        ("https://hooks.example.com/x#frag", "url_invalid"),
        ("https://127.0.0.1/x", "url_not_public"),
        ("https://[::1]/x", "url_not_public"),
        ("https://[::ffff:10.0.0.1]/x", "url_not_public"),
        ("https://169.254.169.254/latest/meta-data", "url_not_public"),
        ("https://10.1.2.3/x", "url_not_public"),
        ("https://2130706433/x", "url_not_public"),
        ("https://0x7f.0.0.1/x", "url_not_public"),
        ("https://127.1/x", "url_not_public"),
        ("https://localhost/x", "url_not_public"),
        ("https://metadata.google.internal/x", "url_not_public"),
        ("https://intranet/x", "url_not_public"),
        ("https://hooks.example.com:99999/x", "url_invalid"),
        ("https://hooks.example.com/a b", "url_invalid"),
        ("https://[zz/x", "url_invalid"),
        ("", "url_required"),
        ("https://example.com/" + "a" * 2000, "url_too_long"),
    ],
)
def test_create_refuses_urls_that_can_never_be_valid(setup, url, code):
    with pytest.raises(ValidationFailed) as exc:
        services.endpoint_create(principal=person(setup.publisher.owner), extension=setup.extension, url=url)
    assert exc.value.code == code and exc.value.param == "url"


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.\uff11/x",  # fullwidth 1: the HTTP client sends to 127.0.0.1
        "https://\u2460\u2461\u2466.0.0.1/x",  # circled digits, mapped the same way
        "https://169.254.169.\uff12\uff15\uff14/latest/meta-data",
        "https://\uff11\uff10.0.0.1/x",
    ],
)
def test_unicode_hosts_are_checked_as_the_client_sends_them(setup, url):
    # given a host that only becomes an IP literal after IDNA mapping (what aiohttp/yarl do)
    with pytest.raises(ValidationFailed) as exc:
        services.endpoint_create(principal=person(setup.publisher.owner), extension=setup.extension, url=url)
    assert exc.value.code == "url_not_public"


@pytest.mark.parametrize("url", ["https://%31%32%37.0.0.1/x", "https://a.example\\.evil/x"])
def test_hosts_the_client_cannot_send_to_are_invalid(setup, url):
    with pytest.raises(ValidationFailed) as exc:
        services.endpoint_create(principal=person(setup.publisher.owner), extension=setup.extension, url=url)
    assert exc.value.code == "url_invalid"


def test_an_idn_host_is_accepted(setup):
    endpoint, _ = services.endpoint_create(
        principal=person(setup.publisher.owner), extension=setup.extension, url="https://b\u00fccher.example/hook"
    )
    assert endpoint.status == EndpointStatus.ENABLED


def test_plain_http_and_private_hosts_are_allowed_in_development(setup, settings):
    settings.PLAZA_ALLOW_PRIVATE_NETWORKS = True
    endpoint, _ = services.endpoint_create(
        principal=person(setup.publisher.owner), extension=setup.extension, url="http://127.0.0.1:9000/hook"
    )
    assert endpoint.url == "http://127.0.0.1:9000/hook"


def test_public_ip_literals_are_accepted(setup):
    endpoint, _ = services.endpoint_create(
        principal=person(setup.publisher.owner), extension=setup.extension, url="https://93.184.216.34/hook"
    )
    assert endpoint.status == EndpointStatus.ENABLED


def test_event_types_must_be_ones_the_extension_subscribes_to(setup):
    with pytest.raises(ValidationFailed) as exc:
        services.endpoint_create(
            principal=person(setup.publisher.owner),
            extension=setup.extension,
            url="https://hooks.vendor.example/b",
            event_types=["customer.created"],
        )
    assert exc.value.code == "event_type_not_subscribed"
    endpoint, _ = services.endpoint_create(
        principal=person(setup.publisher.owner),
        extension=setup.extension,
        url="https://hooks.vendor.example/b",
        event_types=["order.created", "order.created"],
    )
    assert endpoint.event_types == ["order.created"]


@pytest.mark.parametrize("bad", ["order.created", [1], {"a": 1}])
def test_event_types_must_be_a_list_of_names(setup, bad):
    with pytest.raises(ValidationFailed):
        services.endpoint_create(
            principal=person(setup.publisher.owner),
            extension=setup.extension,
            url="https://a.example/x",
            event_types=bad,
        )


def test_an_extension_has_a_limited_number_of_endpoints(setup, settings):
    settings.PLAZA_WEBHOOK_MAX_ENDPOINTS = 2
    services.endpoint_create(principal=None, extension=setup.extension, url="https://a.example/2")
    with pytest.raises(Conflict) as exc:
        services.endpoint_create(principal=None, extension=setup.extension, url="https://a.example/3")
    assert exc.value.code == "endpoint_limit"
    # the sandbox has its own allowance
    services.endpoint_create(
        principal=None, extension=setup.extension, url="https://a.example/3", environment="sandbox"
    )


# --- update, disable, enable, delete -------------------------------------------------------------
def test_update_changes_only_what_is_given_and_audits_it(setup):
    endpoint = services.endpoint_update(
        principal=None, endpoint=setup.endpoint, description="Main", event_types=["order.created"]
    )
    assert endpoint.description == "Main" and endpoint.event_types == ["order.created"]
    assert endpoint.url == "https://hooks.vendor.example/plaza"
    entry = AuditEvent.objects.filter(action="webhook_endpoint.updated").get()
    assert set(entry.changes) == {"description", "event_types"}
    # nothing changed: no entry
    services.endpoint_update(principal=None, endpoint=endpoint, description="Main")
    assert AuditEvent.objects.filter(action="webhook_endpoint.updated").count() == 1


def test_update_checks_the_url_again(setup):
    with pytest.raises(ValidationFailed):
        services.endpoint_update(principal=None, endpoint=setup.endpoint, url="https://10.0.0.1/")


def test_enable_closes_the_breaker_and_forgets_the_streak(setup):
    Endpoint.objects.filter(pk=setup.endpoint.pk).update(
        status=EndpointStatus.DISABLED,
        disabled_reason="Disabled automatically: every attempt failed for 5 days",
        circuit_state=CircuitState.OPEN,
        consecutive_failures=40,
        failing_since=clock.now() - dt.timedelta(days=5),
    )
    setup.endpoint.refresh_from_db()
    services.endpoint_enable(principal=None, endpoint=setup.endpoint)
    e = Endpoint.objects.get(pk=setup.endpoint.pk)
    assert (e.status, e.disabled_reason, e.circuit_state, e.consecutive_failures, e.failing_since) == (
        EndpointStatus.ENABLED,
        "",
        CircuitState.CLOSED,
        0,
        None,
    )
    assert "webhook_endpoint.enabled" in actions(setup.publisher.org)


def test_disable_keeps_a_reason(setup):
    services.endpoint_disable(principal=None, endpoint=setup.endpoint, reason="Maintenance")
    e = Endpoint.objects.get(pk=setup.endpoint.pk)
    assert e.status == EndpointStatus.DISABLED and e.disabled_reason == "Maintenance" and e.disabled_at


def test_delete_is_soft_and_cancels_pending_messages(setup):
    [message] = fan_out(event(setup.customer.org))
    services.endpoint_delete(principal=None, endpoint=setup.endpoint)
    e = Endpoint.objects.get(pk=setup.endpoint.pk)
    assert e.deleted_at and e.status == EndpointStatus.DISABLED
    assert Message.objects.get(pk=message.pk).status == MessageStatus.CANCELLED
    with pytest.raises(Conflict):
        services.endpoint_update(principal=None, endpoint=e, description="x")
    entry = AuditEvent.objects.filter(action="webhook_endpoint.deleted").get()
    assert entry.changes["cancelled_messages"] == 1


# --- secrets -------------------------------------------------------------------------------------
def _verify(secret: str, msg_id: str, body: str, header: str, ts: int) -> None:
    Webhook(secret).verify(body, {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": header})


def test_rotation_signs_with_both_secrets_during_the_overlap(setup):
    new_row, new = services.endpoint_secret_rotate(principal=None, endpoint=setup.endpoint, overlap_hours=24)
    assert new != setup.secret and new_row.last4 == new[-4:]
    live = services.secret_plaintexts(setup.endpoint)
    assert set(live) == {new, setup.secret}
    ts = int(clock.now().timestamp())
    body = '{"type":"order.created"}'
    header = signing.signature_header(live, "msg_test", ts, body)
    assert len(header.split(" ")) == 2
    # a receiver holding either secret accepts the message (independent implementation)
    _verify(setup.secret, "msg_test", body, header, ts)
    _verify(new, "msg_test", body, header, ts)
    # after the overlap only the new one signs
    later = clock.now() + dt.timedelta(hours=25)
    assert services.secret_plaintexts(setup.endpoint, now=later) == [new]


def test_rotation_with_no_overlap_retires_the_old_secret_now(setup):
    _, new = services.endpoint_secret_rotate(principal=None, endpoint=setup.endpoint, overlap_hours=0)
    assert services.secret_plaintexts(setup.endpoint) == [new]


def test_rotating_again_never_lengthens_an_overlap(setup):
    services.endpoint_secret_rotate(principal=None, endpoint=setup.endpoint, overlap_hours=1)
    first = EndpointSecret.objects.filter(endpoint=setup.endpoint).order_by("created_at", "id").first()
    services.endpoint_secret_rotate(principal=None, endpoint=setup.endpoint, overlap_hours=100)
    first.refresh_from_db()
    assert first.expires_at <= clock.now() + dt.timedelta(hours=1)


@pytest.mark.parametrize("hours", [-1, 169, "24", 2.5, True, None])
def test_rotation_overlap_is_bounded(setup, hours):
    with pytest.raises(ValidationFailed) as exc:
        services.endpoint_secret_rotate(principal=None, endpoint=setup.endpoint, overlap_hours=hours)
    assert exc.value.code == "overlap_invalid"


def test_rotation_is_audited_without_the_secret(setup):
    _, new = services.endpoint_secret_rotate(principal=None, endpoint=setup.endpoint)
    entry = AuditEvent.objects.filter(action="webhook_endpoint.secret_rotated").get()
    assert new not in str(entry.changes) and entry.changes["secret"] == f"…{new[-4:]}"


# --- test events ---------------------------------------------------------------------------------
def test_a_test_event_is_a_marked_message_with_an_example_payload(setup):
    message = services.endpoint_test_send(principal=None, endpoint=setup.endpoint)
    assert message.is_test and message.status == MessageStatus.PENDING and message.installation_id is None
    assert message.event_type == "order.created" and '"test":true' in message.body
    assert message.org_id == setup.publisher.org.pk
    assert "webhook_endpoint.test_sent" in actions(setup.publisher.org)


def test_test_events_are_rate_limited(setup, settings):
    settings.PLAZA_WEBHOOK_TEST_EVENTS_PER_HOUR = 2
    for _ in range(2):
        services.endpoint_test_send(principal=None, endpoint=setup.endpoint)
    with pytest.raises(RateLimited) as exc:
        services.endpoint_test_send(principal=None, endpoint=setup.endpoint)
    assert exc.value.code == "test_events_rate_limited"


def test_a_test_event_must_be_of_a_type_the_endpoint_receives(setup):
    with pytest.raises(ValidationFailed):
        services.endpoint_test_send(principal=None, endpoint=setup.endpoint, event_type="customer.created")


# --- the manifest's hooks ------------------------------------------------------------------------
HOOKS = [
    {"event": "order.created", "module": "main", "export": "on_order_created"},
    {"event": "order.created", "url": "https://hooks.vendor.example/from-manifest"},
]


def manifest_endpoints(extension, environment="production"):
    return list(
        Endpoint.objects.filter(extension=extension, source=EndpointSource.MANIFEST, environment=environment).order_by(
            "created_at"
        )
    )


def test_a_release_turns_hooks_with_a_url_into_manifest_endpoints(vendor, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        version = vendor.release(scopes=SCOPES, hooks=HOOKS)
    [endpoint] = manifest_endpoints(version.extension)
    assert endpoint.url == "https://hooks.vendor.example/from-manifest"
    assert endpoint.event_types == ["order.created"] and endpoint.status == EndpointStatus.ENABLED
    assert EndpointSecret.objects.filter(endpoint=endpoint).count() == 1
    # manual changes to what the manifest owns are refused
    with pytest.raises(Conflict) as exc:
        services.endpoint_update(principal=None, endpoint=endpoint, url="https://elsewhere.example/")
    assert exc.value.code == "endpoint_managed_by_manifest"
    with pytest.raises(Conflict):
        services.endpoint_delete(principal=None, endpoint=endpoint)


def test_a_release_without_the_hook_disables_its_endpoint_and_a_later_one_brings_it_back(
    vendor, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        version = vendor.release(scopes=SCOPES, hooks=HOOKS)
    with django_capture_on_commit_callbacks(execute=True):
        vendor.release(version="1.1.0", scopes=SCOPES, hooks=HOOKS[:1])
    [endpoint] = manifest_endpoints(version.extension)
    assert endpoint.status == EndpointStatus.DISABLED and endpoint.disabled_reason.startswith(
        "Removed from the manifest"
    )
    with pytest.raises(Conflict):
        services.endpoint_enable(principal=None, endpoint=endpoint)
    with django_capture_on_commit_callbacks(execute=True):
        vendor.release(version="1.2.0", scopes=SCOPES, hooks=HOOKS)
    [endpoint] = manifest_endpoints(version.extension)
    assert endpoint.status == EndpointStatus.ENABLED and endpoint.disabled_reason == ""


def test_manual_endpoints_are_never_touched_by_the_sync(setup, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        setup.vendor.release(version="1.1.0", scopes=SCOPES, hooks=HOOKS[:1])
    e = Endpoint.objects.get(pk=setup.endpoint.pk)
    assert e.status == EndpointStatus.ENABLED and e.source == EndpointSource.MANUAL


def test_a_manifest_url_the_check_refuses_becomes_a_disabled_endpoint_saying_why(vendor):
    extension = vendor.extension()
    services.manifest_endpoints_sync(
        extension=extension,
        environment="production",
        manifests=[{"hooks": [{"event": "order.created", "url": "https://10.0.0.8/hook"}]}],
    )
    [endpoint] = manifest_endpoints(extension)
    assert endpoint.status == EndpointStatus.DISABLED and "10.0.0.8" in endpoint.disabled_reason


def test_a_refused_manifest_url_stays_disabled_when_it_comes_back(vendor):
    # given a manifest URL the check refuses, removed from the manifest and declared again
    extension = vendor.extension()
    hooks = [{"event": "order.created", "url": "https://10.0.0.8/hook"}]
    for manifests in ([{"hooks": hooks}], [{"hooks": []}], [{"hooks": hooks}]):
        services.manifest_endpoints_sync(extension=extension, environment="production", manifests=manifests)
    [endpoint] = manifest_endpoints(extension)
    # then it is still disabled, saying why, and the publisher cannot enable it either
    assert endpoint.status == EndpointStatus.DISABLED and "10.0.0.8" in endpoint.disabled_reason
    with pytest.raises(ValidationFailed) as exc:
        services.endpoint_enable(principal=None, endpoint=endpoint)
    assert exc.value.code == "url_not_public"
    assert Endpoint.objects.get(pk=endpoint.pk).status == EndpointStatus.DISABLED


def test_the_sandbox_set_follows_the_version_installed_in_the_sandbox(vendor, django_capture_on_commit_callbacks):
    # given a draft with a webhook hook, installed in the publisher's sandbox tenant
    draft = vendor.release(scopes=SCOPES, hooks=HOOKS, certified=False)
    sandbox = sandbox_of(vendor.org)
    from tests.installs.support import installed, session

    with django_capture_on_commit_callbacks(execute=True):
        installed(session(vendor.tenant.owner), sandbox, draft)
    # then it has a sandbox endpoint, and no production one (nothing was released)
    [endpoint] = manifest_endpoints(draft.extension, "sandbox")
    assert endpoint.url == "https://hooks.vendor.example/from-manifest"
    assert manifest_endpoints(draft.extension, "production") == []


def test_a_customer_installation_does_not_touch_sandbox_endpoints(setup):
    assert manifest_endpoints(setup.extension, "sandbox") == []
    assert services.manifest_sync_for_sandbox(setup.installation) == []


def test_a_beta_release_adds_its_hooks_without_dropping_the_stable_ones(vendor, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        version = vendor.release(scopes=SCOPES, hooks=HOOKS)
    beta_hooks = [HOOKS[0], {"event": "order.created", "url": "https://beta.vendor.example/hook"}]
    with django_capture_on_commit_callbacks(execute=True):
        vendor.release(version="2.0.0-beta.1", channel="beta", scopes=SCOPES, hooks=beta_hooks)
    endpoints = manifest_endpoints(version.extension)
    assert sorted((e.url, e.status) for e in endpoints) == [
        ("https://beta.vendor.example/hook", EndpointStatus.ENABLED),
        ("https://hooks.vendor.example/from-manifest", EndpointStatus.ENABLED),
    ]

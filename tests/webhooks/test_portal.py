"""The webhook pages: a publisher's endpoints, one endpoint (secret revealed once, actions, DLQ
with one-click replay), one message, replay/backfill with a preview; an admin's deliveries —
who may open them, forms with and without htmx, hostile input, and constant query counts."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from apps.core import clock
from apps.orgs.models import Role
from apps.webhooks.models import Endpoint, EndpointStatus, Message, MessageStatus, ReplayJob
from apps.webhooks.services import endpoints as endpoint_services
from tests.installs.support import session
from tests.webhooks import test_endpoints_fixtures as fx
from tests.webhooks.test_endpoints_fixtures import event, failed, fan_out

# fixtures
event_catalog = fx.event_catalog
setup = fx.setup
vendor = fx.vendor

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def no_sending(monkeypatch):
    monkeypatch.setattr("apps.webhooks.services.delivery.messages_kick", lambda: None)


def list_url(setup) -> str:
    return reverse("webhook_endpoints", kwargs={"org_id": setup.publisher.org.pk, "extension_id": setup.extension.pk})


def endpoint_url(setup, endpoint=None) -> str:
    endpoint = endpoint or setup.endpoint
    return reverse("webhook_endpoint", kwargs={"org_id": setup.publisher.org.pk, "endpoint_id": endpoint.pk})


def message_url(setup, message) -> str:
    return reverse(
        "webhook_message",
        kwargs={"org_id": setup.publisher.org.pk, "endpoint_id": setup.endpoint.pk, "message_id": message.pk},
    )


def replay_url(setup) -> str:
    return reverse("webhook_replay", kwargs={"org_id": setup.publisher.org.pk, "endpoint_id": setup.endpoint.pk})


def deliveries_url(setup) -> str:
    return reverse(
        "installation_deliveries",
        kwargs={"org_id": setup.customer.org.pk, "installation_id": setup.installation.pk},
    )


def owner(setup):
    return session(setup.publisher.owner)


# --- who may open them ---------------------------------------------------------------------------
@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN, Role.DEVELOPER])
def test_builders_open_the_publisher_pages(setup, role):
    client = session(setup.publisher.user(role))
    for url in (list_url(setup), endpoint_url(setup), replay_url(setup)):
        assert client.get(url).status_code == 200, url


@pytest.mark.parametrize("role", [Role.MEMBER, Role.BILLING])
def test_other_roles_are_refused(setup, role):
    client = session(setup.publisher.user(role))
    assert client.get(list_url(setup)).status_code == 403
    assert client.get(endpoint_url(setup)).status_code == 403


def test_other_organisations_get_404(setup, globex):
    [message] = fan_out(event(setup.customer.org))
    for client in (session(globex.owner), session(setup.customer.owner)):
        for url in (list_url(setup), endpoint_url(setup), message_url(setup, message), replay_url(setup)):
            assert client.get(url).status_code == 404, url
        assert client.post(endpoint_url(setup), {"op": "rotate"}).status_code == 404
    # the publisher's own org in the URL with someone else's endpoint id
    url = reverse("webhook_endpoint", kwargs={"org_id": globex.org.pk, "endpoint_id": setup.endpoint.pk})
    assert session(globex.owner).get(url).status_code == 404


def test_a_developer_may_manage_but_a_member_may_not_post(setup):
    member = session(setup.publisher.user(Role.MEMBER))
    assert member.post(endpoint_url(setup), {"op": "disable"}).status_code == 403
    assert Endpoint.objects.get(pk=setup.endpoint.pk).status == EndpointStatus.ENABLED


# --- the endpoints list --------------------------------------------------------------------------
def test_adding_an_endpoint_reveals_its_secret_once(setup):
    client = owner(setup)
    res = client.post(list_url(setup), {"url": "https://new.vendor.example/h", "event_types": ["order.created"]})
    assert res.status_code == 201
    page = res.content.decode()
    endpoint = Endpoint.objects.get(url="https://new.vendor.example/h")
    [secret] = endpoint_services.secret_plaintexts(endpoint)
    assert secret in page and "only this once" in page
    again = client.get(list_url(setup)).content.decode()
    assert secret not in again and f"…{secret[-4:]}" in again


def test_a_refused_url_is_shown_next_to_the_field(setup):
    res = owner(setup).post(list_url(setup), {"url": "https://127.0.0.1/"})
    assert res.status_code == 400 and 'id="url-error"' in res.content.decode()


def test_the_list_shows_health(setup):
    Endpoint.objects.filter(pk=setup.endpoint.pk).update(
        status=EndpointStatus.DISABLED,
        disabled_reason="Disabled automatically: the endpoint answered 410 Gone",
        circuit_state="open",
        consecutive_failures=7,
        failing_since=clock.now(),
    )
    page = owner(setup).get(list_url(setup)).content.decode()
    assert "Breaker open" in page and "7 failures in a row" in page and "410 Gone" in page


def test_an_extension_without_endpoints_says_so(vendor):
    version = vendor.release(name="lonely")
    url = reverse("webhook_endpoints", kwargs={"org_id": vendor.org.pk, "extension_id": version.extension.pk})
    assert "No endpoints yet." in session(vendor.tenant.owner).get(url).content.decode()


# --- one endpoint --------------------------------------------------------------------------------
def test_rotating_reveals_the_new_secret_once(setup):
    client = owner(setup)
    res = client.post(endpoint_url(setup), {"op": "rotate", "overlap_hours": "12"})
    assert res.status_code == 200
    live = endpoint_services.secret_plaintexts(setup.endpoint)
    new = next(s for s in live if s != setup.secret)
    assert new in res.content.decode() and "12 hours" in res.content.decode()
    assert new not in client.get(endpoint_url(setup)).content.decode()


@pytest.mark.parametrize(
    "op, check",
    [
        ("disable", lambda e: e.status == EndpointStatus.DISABLED),
        ("test", lambda e: Message.objects.filter(endpoint=e, is_test=True).count() == 1),
        ("update", lambda e: e.description == "Primary"),
    ],
)
def test_actions_post_then_redirect(setup, op, check):
    res = owner(setup).post(endpoint_url(setup), {"op": op, "description": "Primary", "url": setup.endpoint.url})
    assert res.status_code == 302
    assert check(Endpoint.objects.get(pk=setup.endpoint.pk))


def test_enable_after_disable(setup):
    client = owner(setup)
    client.post(endpoint_url(setup), {"op": "disable"})
    assert client.post(endpoint_url(setup), {"op": "enable"}).status_code == 302
    assert Endpoint.objects.get(pk=setup.endpoint.pk).status == EndpointStatus.ENABLED


def test_delete_goes_back_to_the_list(setup):
    res = owner(setup).post(endpoint_url(setup), {"op": "delete"})
    assert res.status_code == 302 and res["Location"] == list_url(setup)
    assert owner(setup).get(endpoint_url(setup)).status_code == 404


def test_the_dlq_tab_replays_with_one_click(setup):
    [message] = fan_out(event(setup.customer.org))
    failed(message)
    client = owner(setup)
    page = client.get(endpoint_url(setup) + "?tab=dlq").content.decode()
    assert message.pk in page and 'value="replay"' in page
    res = client.post(endpoint_url(setup) + "?tab=dlq", {"op": "replay", "message_id": message.pk})
    assert res.status_code == 302
    assert Message.objects.get(pk=message.pk).status == MessageStatus.PENDING
    assert "dead-letter queue is empty" in client.get(endpoint_url(setup) + "?tab=dlq").content.decode()


def test_replay_failed_since_from_the_dlq_tab(setup):
    for _ in range(2):
        failed(fan_out(event(setup.customer.org))[0])
    res = owner(setup).post(
        endpoint_url(setup), {"op": "replay_failed", "since": (clock.now() - dt.timedelta(hours=1)).isoformat()}
    )
    assert res.status_code == 302
    job = ReplayJob.objects.get()
    assert job.kind == "failed_since" and job.preview_count == 2


def test_htmx_filters_get_only_the_rows(setup):
    fan_out(event(setup.customer.org))
    res = owner(setup).get(endpoint_url(setup) + "?status=pending", **HTMX)
    html = res.content.decode()
    assert res.status_code == 200 and 'id="message-rows"' in html and "<html" not in html


def test_an_empty_endpoint_says_so(setup):
    assert "No messages yet." in owner(setup).get(endpoint_url(setup)).content.decode()


@pytest.mark.parametrize(
    "data",
    [
        {"op": "explode"},
        {"op": "rotate", "overlap_hours": "many"},
        {"op": "rotate", "overlap_hours": "9999"},
        {"op": "replay", "message_id": "msg_nope"},
        {"op": "replay_failed", "since": "yesterday"},
        {"op": "replay_failed", "since": ""},
        {"op": "update", "url": "https://a.example/\x00x"},
        {"op": "test", "event_type": "customer.created"},
        {"op": "replay_failed", "since": clock.now().isoformat()},
    ],
)
def test_bad_posts_answer_4xx_on_the_page(setup, data):
    res = owner(setup).post(endpoint_url(setup), data)
    assert 400 <= res.status_code < 500


def test_a_garbage_cursor_starts_from_the_beginning(setup):
    assert owner(setup).get(endpoint_url(setup) + "?cursor=%00%FF&status=\x00").status_code == 200


# --- a message -----------------------------------------------------------------------------------
def test_the_message_page_shows_the_body_and_attempts(setup):
    [message] = fan_out(event(setup.customer.org))
    failed(message)
    client = owner(setup)
    page = client.get(message_url(setup, message)).content.decode()
    assert "o-1" in page and "HTTP 500" in page and "http_status" in page and "oops" in page
    assert client.post(message_url(setup, message)).status_code == 302
    assert Message.objects.get(pk=message.pk).status == MessageStatus.PENDING
    again = client.post(message_url(setup, message))
    assert again.status_code == 409


# --- replay and backfill -------------------------------------------------------------------------
def test_backfill_previews_then_confirms(setup):
    for _ in range(3):
        event(setup.customer.org, at=clock.now() - dt.timedelta(minutes=10))
    client = owner(setup)
    since = (clock.now() - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    form = {"kind": "backfill", "since": since, "event_types": ["order.created"]}
    res = client.post(replay_url(setup), {**form, "op": "preview"})
    assert res.status_code == 200 and "<strong>3</strong>" in res.content.decode()
    assert ReplayJob.objects.count() == 0
    res = client.post(replay_url(setup), {**form, "op": "confirm"})
    assert res.status_code == 302
    job = ReplayJob.objects.get()
    assert job.preview_count == 3
    page = client.get(replay_url(setup)).content.decode()
    assert job.pk in page


def test_the_jobs_list_polls_while_a_job_runs(setup):
    failed(fan_out(event(setup.customer.org))[0])
    client = owner(setup)
    client.post(
        replay_url(setup),
        {"kind": "failed_since", "since": (clock.now() - dt.timedelta(hours=1)).isoformat(), "op": "confirm"},
    )
    html = client.get(replay_url(setup), **HTMX).content.decode()
    assert 'hx-trigger="every 2s"' in html and "<html" not in html


@pytest.mark.parametrize(
    "data",
    [
        {"kind": "everything", "since": "2026-01-01T00:00"},
        {"kind": "backfill", "since": "nope"},
        {"kind": "backfill", "since": "2026-01-01T00:00", "event_types": ["nope.nope"]},
        {"kind": "backfill", "since": "", "op": "confirm"},
    ],
)
def test_bad_replay_forms_answer_400(setup, data):
    assert owner(setup).post(replay_url(setup), data).status_code == 400


# --- an admin's deliveries -----------------------------------------------------------------------
def test_admins_see_deliveries_with_the_payload(setup):
    [message] = fan_out(event(setup.customer.org))
    failed(message)
    client = session(setup.customer.owner)
    page = client.get(deliveries_url(setup)).content.decode()
    assert message.pk in page
    detail = reverse(
        "installation_delivery",
        kwargs={"org_id": setup.customer.org.pk, "installation_id": setup.installation.pk, "message_id": message.pk},
    )
    html = client.get(detail).content.decode()
    assert "o-1" in html and "HTTP 500" in html
    assert "hooks.vendor.example" not in html and "oops" not in html


@pytest.mark.parametrize(
    "error",
    [
        "ClientConnectorError: Cannot connect to host hooks.vendor.example:443 ssl:default",
        "hooks.vendor.example resolves to 10.1.2.3, which is private; Plaza does not connect there.",
        "Endpoint disabled: moving to the new cluster at 10.1.2.3",
    ],
)
def test_customers_never_see_the_engines_error_text(setup, error):
    # given a delivery whose last error names the publisher's endpoint (or its disable note)
    [message] = fan_out(event(setup.customer.org))
    Message.objects.filter(pk=message.pk).update(status=MessageStatus.FAILED, last_error=error)
    detail = reverse(
        "installation_delivery",
        kwargs={"org_id": setup.customer.org.pk, "installation_id": setup.installation.pk, "message_id": message.pk},
    )
    html = session(setup.customer.owner).get(detail).content.decode()
    assert "could not be reached" in html
    assert "hooks.vendor.example" not in html and "10.1.2.3" not in html and "cluster" not in html


def test_deliveries_pages_refuse_others(setup, globex):
    assert session(setup.customer.user(Role.MEMBER)).get(deliveries_url(setup)).status_code == 403
    assert session(globex.owner).get(deliveries_url(setup)).status_code == 404
    assert session(setup.publisher.owner).get(deliveries_url(setup)).status_code == 404


def test_no_deliveries_yet_says_so(setup):
    assert "No deliveries yet" in session(setup.customer.owner).get(deliveries_url(setup)).content.decode()


# --- query counts --------------------------------------------------------------------------------
def test_pages_take_constant_queries(setup, django_assert_max_num_queries):
    client = owner(setup)
    admin = session(setup.customer.owner)
    for warm in (client.get(list_url(setup)), client.get(endpoint_url(setup)), admin.get(deliveries_url(setup))):
        assert warm.status_code == 200
    counts = {}
    for n in (1, 6):
        for i in range(n):
            endpoint_services.endpoint_create(principal=None, extension=setup.extension, url=f"https://{n}-{i}.ex.com/")
            failed(fan_out(event(setup.customer.org))[0])
        with django_assert_max_num_queries(30) as list_q:
            client.get(list_url(setup))
        with django_assert_max_num_queries(30) as page_q:
            client.get(endpoint_url(setup) + "?tab=dlq")
        with django_assert_max_num_queries(30) as admin_q:
            admin.get(deliveries_url(setup))
        counts[n] = (len(list_q), len(page_q), len(admin_q))
    assert counts[1] == counts[6]


# --- links from the other apps' pages ------------------------------------------------------------
def test_the_extension_page_links_its_webhooks(setup):
    url = reverse("extension_detail", kwargs={"org_id": setup.publisher.org.pk, "extension_id": setup.extension.pk})
    assert f'href="{list_url(setup)}"' in owner(setup).get(url).content.decode()


def test_the_installation_page_links_its_deliveries_for_admins(setup):
    url = reverse(
        "installation_detail", kwargs={"org_id": setup.customer.org.pk, "installation_id": setup.installation.pk}
    )
    assert f'href="{deliveries_url(setup)}"' in session(setup.customer.owner).get(url).content.decode()
    member_page = session(setup.customer.user(Role.MEMBER)).get(url).content.decode()
    assert deliveries_url(setup) not in member_page

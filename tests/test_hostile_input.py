"""Hostile input, case by case: what a careless or malicious client sends, and what it must get.

The contract (docs/api.md): every API error is ``{"error": {"type", "code", "message", "param",
"request_id"}}`` with a 4xx status, every response carries ``X-Request-Id``, and no input
produces a 500 or creates anything when it is rejected. Portal forms answer a 400 page that shows
the message, and create nothing.

Runs on SQLite and on PostgreSQL; the NUL-byte cases matter most on PostgreSQL, which refuses NUL
in text (a classic 500).
"""

from __future__ import annotations

import base64
import json
import re
from contextlib import contextmanager

import pytest
from django.core import mail
from django.test import Client
from django.utils.html import escape

from apps.audit.models import AuditEvent
from apps.core.api import encode_cursor
from apps.orgs.models import ApiToken, Domain, Invitation, Membership, Organization, Role, ServiceAccount, Workspace
from tests.conftest import ApiClient, issue_token

API = "/api/v1"
ERROR_KEYS = {"type", "code", "message", "param", "request_id"}
FRESH_REQUEST_ID = re.compile(r"^req_[0-9a-f]{24}$")
MODELS = [Organization, Workspace, Membership, Invitation, Domain, ServiceAccount, ApiToken, AuditEvent]

NUL = "\x00"
CONTROL_NAMES = ["a\x00b", "\x00", "tab\there", "bell\x07", "new\nline", "esc\x1b[31m", "\x7f\x00"]


# --- helpers -------------------------------------------------------------------------------------
def envelope(res, status: int, code: str | None = None, param: str | None = "<any>") -> dict:
    """Assert ``res`` is the error envelope with ``status`` (and ``code``/``param``); return the error."""
    assert res.status_code == status, (res.status_code, res.content[:500])
    assert res["Content-Type"].startswith("application/json"), res["Content-Type"]
    body = res.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert ERROR_KEYS <= set(error) <= ERROR_KEYS | {"details"}, error
    assert all(isinstance(error[k], str) and error[k] for k in ("type", "code", "message", "request_id")), error
    assert error["request_id"] == res["X-Request-Id"]
    if code is not None:
        assert error["code"] == code, error
    if param != "<any>":
        assert error["param"] == param, error
    return error


def counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in MODELS}


@contextmanager
def creates_nothing():
    before, outbox = counts(), len(mail.outbox)
    yield
    assert counts() == before
    assert len(mail.outbox) == outbox


def send(api: ApiClient, method: str, path: str, body: bytes | str, content_type: str = "application/json", **extra):
    """A request with a raw body (the test client's ``call`` would JSON-encode it)."""
    url = path if path.startswith("/") else f"{API}/{path}"
    return getattr(api, method.lower())(
        url, body, content_type=content_type, HTTP_AUTHORIZATION=f"Bearer {api.token}", **extra
    )


@pytest.fixture
def api(acme) -> ApiClient:
    """An owner service account's token of acme, with every scope."""
    return ApiClient(issue_token(acme.org, role=Role.OWNER))


@pytest.fixture
def sa_id(api) -> str:
    return api.call("GET", "me").json()["id"]


def org_url(acme, rest: str = "") -> str:
    return f"orgs/{acme.org.pk}{rest}"


# --- malformed bodies ----------------------------------------------------------------------------
MALFORMED_JSON = [
    b"{",
    b'{"name": }',
    b'{"name": "x"} trailing',
    b"{'name': 'single quotes'}",
    b"\xff\xfe\xfd",  # not UTF-8
    b'{"name": "\xc3\x28"}',  # invalid UTF-8 inside a string
    b"[" * 100_000 + b"]" * 100_000,  # deeper than any parser's recursion limit
    b"\x00\x00\x00",
]


@pytest.mark.parametrize("body", MALFORMED_JSON, ids=range(len(MALFORMED_JSON)))
def test_malformed_json_is_400_invalid_request(acme, api, body):
    with creates_nothing():
        res = send(api, "POST", org_url(acme, "/workspaces"), body)
    envelope(res, 400, "invalid_request")


@pytest.mark.parametrize("body", ['"abc"', "123", "null", "true", "[]", '[{"require_mfa": true}]', "1e999"])
def test_a_json_body_that_is_not_an_object_is_rejected_and_changes_nothing(acme, api, body):
    # given a policy with a maximum session age
    assert api.call("PUT", org_url(acme, "/policy"), {"max_session_age_minutes": 60}).status_code == 200
    # when the PUT body is JSON but not an object (every PolicyIn field has a default)
    with creates_nothing():
        res = send(api, "PUT", org_url(acme, "/policy"), body)
    # then it is refused, and the policy is not reset to its defaults
    error = envelope(res, 400, "invalid_request")
    assert "JSON object" in error["message"]
    acme.org.refresh_from_db()
    assert acme.org.max_session_age_minutes == 60


@pytest.mark.parametrize("body", ['{"max_session_age_minutes": NaN}', '{"max_session_age_minutes": Infinity}'])
def test_non_finite_numbers_are_rejected(acme, api, body):
    envelope(send(api, "PUT", org_url(acme, "/policy"), body), 400, "validation_error", "max_session_age_minutes")


def test_empty_body_on_a_required_payload_is_a_validation_error(acme, api):
    with creates_nothing():
        envelope(send(api, "POST", org_url(acme, "/workspaces"), b""), 400, "validation_error")


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/x-www-form-urlencoded", "name=Staging&slug=staging"),
        (
            "multipart/form-data; boundary=xyz",
            '--xyz\r\nContent-Disposition: form-data; name="name"\r\n\r\nS\r\n--xyz--',
        ),
        ("application/xml", "<workspace><name>Staging</name></workspace>"),
        ("text/plain", "name: Staging"),
    ],
)
def test_a_body_in_another_format_is_refused(acme, api, content_type, body):
    with creates_nothing():
        res = send(api, "POST", org_url(acme, "/workspaces"), body, content_type=content_type)
    envelope(res, 400, "invalid_request")


def test_a_cross_site_form_post_cannot_ride_the_session(acme):
    # A JSON body sent as text/plain is parsed (the API does not answer 415 today), which is what a
    # cross-site <form enctype="text/plain"> could send: the CSRF check must stop it.
    client = Client(enforce_csrf_checks=True)
    client.force_login(acme.owner)
    with creates_nothing():
        res = client.post(f"{API}/orgs/{acme.org.pk}/workspaces", '{"name": "x"}', content_type="text/plain")
    envelope(res, 403, "csrf_failed")


def test_a_huge_body_is_413_not_500(acme, api):
    body = json.dumps({"name": "big", "description": "x" * (3 * 1024 * 1024)})
    with creates_nothing():
        res = send(api, "POST", org_url(acme, "/workspaces"), body)
    envelope(res, 413, "payload_too_large")


def test_too_many_query_parameters_is_400_not_500(acme, api):
    query = "&".join(f"p{i}=1" for i in range(1500))
    res = api.get(f"{API}/{org_url(acme, '/members')}?{query}", HTTP_AUTHORIZATION=f"Bearer {api.token}")
    envelope(res, 400)


# --- names, e-mails and other strings ----------------------------------------------------------
@pytest.mark.parametrize("name", CONTROL_NAMES)
@pytest.mark.parametrize(
    "path", ["/workspaces", "/service-accounts", ""], ids=["workspace", "service_account", "org_rename"]
)
def test_control_characters_in_names_are_rejected(acme, api, name, path):
    method = "PATCH" if path == "" else "POST"
    with creates_nothing():
        res = api.call(method, org_url(acme, path), {"name": name})
    envelope(res, 400, "validation_error", "name")
    acme.org.refresh_from_db()
    assert acme.org.name == "Acme"


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/workspaces", {"name": "ok", "description": f"a{NUL}b"}, "description"),
        ("/service-accounts", {"name": "ok", "description": NUL}, "description"),
        ("/workspaces", {"name": "ok", "slug": f"s{NUL}"}, "slug"),
        ("/invitations", {"email": f"a{NUL}@acme.test"}, "email"),
        ("/invitations", {"email": "new@acme.test", "role": f"member{NUL}"}, "role"),
        ("/domains", {"name": f"exa{NUL}mple.com"}, "name"),
        ("/policy", {"ip_allowlist": [f"10.0.0.1{NUL}"]}, "ip_allowlist[0]"),
    ],
)
def test_nul_bytes_anywhere_in_a_body_are_400(acme, api, path, body, param):
    method = "PUT" if path == "/policy" else "POST"
    with creates_nothing():
        res = api.call(method, org_url(acme, path), body)
    envelope(res, 400, "validation_error", param)


def test_nul_in_token_fields_is_400(acme, api, sa_id):
    url = org_url(acme, f"/service-accounts/{sa_id}/tokens")
    with creates_nothing():
        envelope(api.call("POST", url, {"name": f"ci{NUL}", "scopes": ["org:read"]}), 400, "validation_error", "name")
        res = api.call("POST", url, {"name": "ci", "scopes": ["org:read", f"org:read{NUL}"]})
        envelope(res, 400, "validation_error", "scopes[1]")


@pytest.mark.parametrize("field", ["action", "actor", "target"])
def test_nul_bytes_in_query_parameters_are_400(acme, api, field):
    for path in ("/audit-events", "/audit-events/export"):
        res = api.call("GET", org_url(acme, path), {field: f"member{NUL}"})
        envelope(res, 400, "validation_error", field)


BAD_DATES = ["2024-13-45T00:00:00Z", "yesterday", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "1e9"]
ODD_DATES = ["7498-05-16T20:55:24.4-21:31", "2024-01-01T00:00:00+23:59", "2024-01-01T00:00:00", "0001-01-01T00:00:00Z"]


@pytest.mark.parametrize("field", ["since", "until"])
def test_audit_date_filters_never_500(acme, api, field):
    for path in ("/audit-events", "/audit-events/export"):
        for value in BAD_DATES:
            envelope(api.call("GET", org_url(acme, path), {field: value}), 400, "validation_error", field)
        for value in ODD_DATES:  # valid ISO 8601, extreme offsets (PostgreSQL allows ±15:59 only) or years
            res = api.call("GET", org_url(acme, path), {field: value})
            assert res.status_code == 200, (value, res.content)


def test_a_nul_cursor_is_400(acme, api):
    envelope(api.call("GET", org_url(acme, "/members"), {"cursor": NUL}), 400, param="cursor")
    envelope(api.call("GET", org_url(acme, "/members"), {"cursor": encode_cursor(NUL)}), 400, "invalid_cursor")


@pytest.mark.parametrize("name", ["Zürich 🚀", "東京チーム", "Ω≈ç√", "\u202eevil", "e\u0301"])
def test_unicode_names_are_stored_and_returned_unchanged(acme, api, name):
    res = api.call("POST", org_url(acme, "/workspaces"), {"name": name, "slug": "u"})
    assert res.status_code == 201, res.content
    assert res.json()["name"] == name
    assert api.call("GET", org_url(acme, f"/workspaces/{res.json()['id']}")).json()["name"] == name


@pytest.mark.parametrize(
    "email",
    ["", "   ", "not-an-email", "a@b", "@acme.test", "a@@acme.test", "a b@acme.test", "a@acme.test\nBcc: x@evil.test"],
)
def test_invalid_emails_are_rejected(acme, api, email):
    with creates_nothing():
        envelope(api.call("POST", org_url(acme, "/invitations"), {"email": email}), 400, "validation_error", "email")


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/workspaces", {"name": "x" * 101}, "name"),
        ("/workspaces", {"name": "x" * 100_000}, "name"),
        ("/workspaces", {"name": "ok", "description": "x" * 501}, "description"),
        ("/workspaces", {"name": "ok", "slug": "s" * 61}, "slug"),
        ("/service-accounts", {"name": "x" * 101}, "name"),
        ("/invitations", {"email": "a" * 250 + "@acme.test"}, "email"),
        ("/domains", {"name": "a" * 250 + ".com"}, "name"),
        ("", {"name": "x" * 101}, "name"),
    ],
)
def test_over_long_strings_are_rejected(acme, api, path, body, param):
    method = "PATCH" if path == "" else "POST"
    with creates_nothing():
        envelope(api.call(method, org_url(acme, path), body), 400, "validation_error", param)


def test_over_long_query_strings_are_rejected(acme, api):
    envelope(api.call("GET", org_url(acme, "/audit-events"), {"action": "a" * 81}), 400, "validation_error", "action")
    envelope(api.call("GET", org_url(acme, "/members"), {"cursor": "A" * 201}), 400, "validation_error", "cursor")


SQLISH = ["'; DROP TABLE orgs_workspace; --", '" OR "1"="1', "1; SELECT pg_sleep(10)", "%' OR 1=1 --", "_%"]


@pytest.mark.parametrize("value", SQLISH)
def test_sql_ish_strings_are_data(acme, api, value):
    # used as filters and ids: no match, no error
    for field in ("action", "actor", "target"):
        res = api.call("GET", org_url(acme, "/audit-events"), {field: value})
        assert res.status_code == 200, res.content
        assert res.json()["data"] == []
    envelope(api.call("GET", f"orgs/{value}"), 404, "not_found")
    # stored verbatim as a name, and found again by it
    res = api.call("POST", org_url(acme, "/workspaces"), {"name": value, "slug": "sqlish"})
    assert res.status_code == 201, res.content
    assert res.json()["name"] == value
    assert api.call("GET", org_url(acme, f"/workspaces/{res.json()['id']}")).json()["name"] == value
    assert Workspace.objects.filter(org=acme.org).count() == 2


@pytest.mark.parametrize("agent", [f"evil{NUL}agent", "\x1b[2J\x07", "ü" * 1000, "x" * 10_000])
def test_hostile_user_agents_do_not_break_audited_writes(acme, api, agent):
    res = api.call("POST", org_url(acme, "/workspaces"), {"name": "Agent"}, HTTP_USER_AGENT=agent)
    assert res.status_code == 201, res.content
    event = AuditEvent.objects.get(action="workspace.created", target_id=res.json()["id"])
    assert NUL not in event.user_agent
    assert len(event.user_agent) <= 400


@pytest.mark.parametrize(
    "authorization",
    ["Bearer", "Bearer ", "Basic YTpi", "bearer plz_x", f"Bearer plz_{NUL}", "Bearer plz_" + "x" * 10_000, "Bearer ü"],
)
def test_garbage_authorization_is_401(acme, authorization):
    with creates_nothing():
        res = Client().post(
            f"{API}/orgs/{acme.org.pk}/workspaces", {"name": "x"}, "application/json", HTTP_AUTHORIZATION=authorization
        )
    envelope(res, 401, "unauthenticated")
    assert res["WWW-Authenticate"] == 'Bearer realm="plaza"'


# --- ids -----------------------------------------------------------------------------------------
def test_hostile_ids_all_answer_the_same_404(acme, globex, api):
    workspace = Workspace.objects.filter(org=acme.org).first()
    theirs = Workspace.objects.filter(org=globex.org).first()
    org = acme.org.pk
    bad_ids = [
        theirs.pk,  # another tenant's
        workspace.pk.replace("wsp_", "org_"),  # wrong prefix
        org,  # an id of another type
        workspace.pk.lower(),
        workspace.pk + "0",
        workspace.pk[:-1],
        "wsp_" + "0" * 26,  # right shape, unknown
        "..",
        "%2e%2e",
        "%00",
        "*",
        "' OR '1'='1",
        "wsp_01J\u0661\u0662",
    ]
    messages = set()
    for bad in bad_ids:
        res = api.call("GET", f"orgs/{org}/workspaces/{bad}")
        messages.add(envelope(res, 404, "not_found", None)["message"])
    assert messages == {"No such workspace."}
    # an id that decodes to more path segments is no endpoint at all: still an enveloped 404
    for bad in ("..%2F..%2Fmembers", "wsp_01J..%2F..%2F", "x%2Fy%2Fz"):
        envelope(api.call("GET", f"orgs/{org}/workspaces/{bad}"), 404, "not_found")


@pytest.mark.parametrize("bad", ["org_" + "0" * 26, "ORG_x", "%2e%2e", "%00", "org_\u0661\u0662", "null", "-1"])
def test_hostile_org_ids_are_404(api, bad):
    envelope(api.call("GET", f"orgs/{bad}/members"), 404, "not_found")


def test_other_tenants_org_is_indistinguishable_from_an_unknown_one(acme, globex, api):
    theirs = envelope(api.call("GET", f"orgs/{globex.org.pk}"), 404)
    unknown = envelope(api.call("GET", "orgs/org_" + "0" * 26), 404)
    assert (theirs["message"], theirs["code"]) == (unknown["message"], unknown["code"])


def test_path_traversal_outside_the_api_is_an_enveloped_404(api):
    for path in (f"{API}/../../etc/passwd", f"{API}/..%2F..%2Fadmin", f"{API}/orgs/%2e%2e/%2e%2e/me/x"):
        res = api.get(path, HTTP_AUTHORIZATION=f"Bearer {api.token}")
        assert res.status_code in (404, 405), (path, res.status_code)
        if path.startswith("/api/"):
            envelope(res, res.status_code)


# --- pagination ----------------------------------------------------------------------------------
@pytest.mark.parametrize("limit", ["0", "-1", "101", "1000", str(10**30), "abc", "1.5", "", "1e2", "0x10", "١٢"])
def test_bad_limits_are_400(acme, api, limit):
    envelope(api.call("GET", org_url(acme, "/members"), {"limit": limit}), 400, "validation_error", "limit")


def test_limit_bounds_are_inclusive(acme, api):
    assert len(api.call("GET", org_url(acme, "/members"), {"limit": 1}).json()["data"]) == 1
    assert api.call("GET", org_url(acme, "/members"), {"limit": 100}).status_code == 200


GARBAGE_CURSORS = [
    "garbage",
    "!!!!",
    "====",
    "%00",
    "bWVt",  # base64 of "mem"
    base64.urlsafe_b64encode(b"\xff\xfe\xfa").decode(),  # not UTF-8
    encode_cursor("mem_' OR 1=1 --"),
    encode_cursor("mem_" + "0" * 25),
    "🚀",
]


@pytest.mark.parametrize("cursor", GARBAGE_CURSORS, ids=range(len(GARBAGE_CURSORS)))
def test_garbage_cursors_are_400_invalid_cursor(acme, api, cursor):
    envelope(api.call("GET", org_url(acme, "/members"), {"cursor": cursor}), 400, "invalid_cursor", "cursor")


def test_a_cursor_from_another_list_is_refused(acme, api):
    # given a real cursor of the members list
    page = api.call("GET", org_url(acme, "/members"), {"limit": 1}).json()
    assert page["next_cursor"]
    # it pages the members list
    assert api.call("GET", org_url(acme, "/members"), {"cursor": page["next_cursor"]}).status_code == 200
    # but means nothing to the other lists
    for path in ("/workspaces", "/invitations", "/domains", "/service-accounts", "/tokens", "/audit-events"):
        res = api.call("GET", org_url(acme, path), {"cursor": page["next_cursor"]})
        envelope(res, 400, "invalid_cursor", "cursor")
    envelope(api.call("GET", "orgs", {"cursor": page["next_cursor"]}), 400, "invalid_cursor", "cursor")


def test_duplicated_query_parameters_never_bypass_validation(acme, api):
    url = f"{API}/{org_url(acme, '/members')}"
    auth = {"HTTP_AUTHORIZATION": f"Bearer {api.token}"}
    for query in ("limit=1&limit=500", "limit=500&limit=1", "limit=1&limit=abc", "limit=1&limit=1"):
        res = api.get(f"{url}?{query}", **auth)
        if res.status_code == 200:
            assert len(res.json()["data"]) == 1, query
        else:
            envelope(res, 400, "validation_error", "limit")
    page = api.get(f"{url}?limit=1", **auth).json()
    for query in (f"cursor=garbage&cursor={page['next_cursor']}", f"cursor={page['next_cursor']}&cursor=garbage"):
        res = api.get(f"{url}?limit=1&{query}", **auth)
        assert res.status_code in (200, 400), res.content
        if res.status_code == 400:
            envelope(res, 400, "invalid_cursor", "cursor")


# --- request ids ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "sent",
    ["short", "has space", "a" * 129, "my-trace-0001\n", "<script>", "x\u00e9" * 5, "a;b,c" * 3, "", "ab\tcdefgh"],
)
def test_invalid_request_ids_are_replaced(acme, api, sent):
    for path in ("me", "orgs/org_" + "0" * 26, "no-such-endpoint"):
        res = api.call("GET", path, HTTP_X_REQUEST_ID=sent)
        assert res["X-Request-Id"] != sent
        assert FRESH_REQUEST_ID.match(res["X-Request-Id"])
        if res.status_code >= 400:
            assert envelope(res, res.status_code)["request_id"] == res["X-Request-Id"]


@pytest.mark.parametrize("sent", ["my-trace-0001", "a" * 128, "A.b_c:d-E", "12345678"])
def test_valid_request_ids_are_echoed(acme, api, sent):
    for path in ("me", "orgs/org_" + "0" * 26, "no-such-endpoint"):
        res = api.call("GET", path, HTTP_X_REQUEST_ID=sent)
        assert res["X-Request-Id"] == sent
        if res.status_code >= 400:
            assert envelope(res, res.status_code)["request_id"] == sent
    res = api.call("DELETE", "me", HTTP_X_REQUEST_ID=sent)
    assert envelope(res, 405)["request_id"] == sent
    assert Client().get("/", HTTP_X_REQUEST_ID=sent)["X-Request-Id"] == sent


# --- unknown paths and wrong methods -------------------------------------------------------------
@pytest.mark.parametrize(
    "path",
    [
        f"{API}/nope",
        f"{API}/orgs/x/y/z/w",
        f"{API}/ME",
        "/api/v2/orgs",
        "/api/",
        f"{API}/openapi.json/x",
        "/api/v1//me",
    ],
)
@pytest.mark.parametrize("authenticated", [True, False])
def test_unknown_api_paths_are_enveloped_404(api, path, authenticated):
    extra = {"HTTP_AUTHORIZATION": f"Bearer {api.token}"} if authenticated else {}
    for method in ("get", "post", "delete"):
        res = getattr(api, method)(path, **extra)
        envelope(res, 404, "not_found")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", "me"),
        ("PUT", "orgs"),
        ("POST", "orgs/{org}"),
        ("DELETE", "orgs/{org}/policy"),
        ("POST", "orgs/{org}/tokens"),
        ("PATCH", "me/sessions"),
        ("PUT", "orgs/{org}/audit-events/export"),
    ],
)
def test_wrong_methods_are_enveloped_405_with_allow(acme, api, method, path):
    with creates_nothing():
        res = api.call(method, path.format(org=acme.org.pk))
    envelope(res, 405, "method_not_allowed")
    assert res.has_header("Allow")
    assert method not in res["Allow"]


# --- security policy -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("allowlist", "index"),
    [
        (["banana"], 0),
        (["127.0.0.1", "10.0.0.0/33"], 1),
        (["127.0.0.1", "300.1.1.1"], 1),
        (["::g"], 0),
        ([""], 0),
        (["127.0.0.1", " "], 1),
        (["10.0.0.1/8/8"], 0),
        (["127.0.0.1; DROP TABLE x"], 0),
        (["127.0.0.1\n10.0.0.1"], 0),
    ],
)
def test_garbage_allowlist_entries_are_400_and_change_nothing(acme, api, allowlist, index):
    with creates_nothing():
        res = api.call("PUT", org_url(acme, "/policy"), {"ip_allowlist": allowlist})
    envelope(res, 400, "validation_error", f"ip_allowlist[{index}]")
    acme.org.refresh_from_db()
    assert acme.org.ip_allowlist == []


@pytest.mark.parametrize("allowlist", [[1, 2], "127.0.0.1", [["127.0.0.1"]], ["127.0.0.1"] * 101, {"a": 1}])
def test_mistyped_allowlists_are_validation_errors(acme, api, allowlist):
    with creates_nothing():
        envelope(api.call("PUT", org_url(acme, "/policy"), {"ip_allowlist": allowlist}), 400, "validation_error")


def test_an_allowlist_without_the_callers_address_would_lock_out(acme, api):
    with creates_nothing():
        res = api.call("PUT", org_url(acme, "/policy"), {"ip_allowlist": ["10.0.0.0/8"]}, REMOTE_ADDR="192.0.2.7")
    error = envelope(res, 400, "would_lock_out", "ip_allowlist")
    assert "192.0.2.7" in error["message"]
    acme.org.refresh_from_db()
    assert acme.org.ip_allowlist == []
    # including the caller is fine
    res = api.call("PUT", org_url(acme, "/policy"), {"ip_allowlist": ["192.0.2.0/24"]}, REMOTE_ADDR="192.0.2.7")
    assert res.status_code == 200, res.content


def test_requiring_mfa_without_having_it_would_lock_out(acme, login_client):
    client = login_client(acme.owner)
    with creates_nothing():
        res = client.put(f"{API}/{org_url(acme, '/policy')}", {"require_mfa": True}, content_type="application/json")
    envelope(res, 400, "would_lock_out", "require_mfa")
    acme.org.refresh_from_db()
    assert acme.org.require_mfa is False


@pytest.mark.parametrize("minutes", [0, 4, 129601, -5, 10**20, "soon", 1.5])
def test_session_age_out_of_range_is_rejected(acme, api, minutes):
    res = api.call("PUT", org_url(acme, "/policy"), {"max_session_age_minutes": minutes})
    envelope(res, 400, "validation_error", "max_session_age_minutes")


# --- invitations, domains, tokens ---------------------------------------------------------------
@pytest.mark.parametrize("email", ["member@acme.test", "MEMBER@ACME.TEST", "  member@acme.test  ", "alice@acme.test"])
def test_inviting_a_member_is_409_already_member(acme, api, email):
    with creates_nothing():
        res = api.call("POST", org_url(acme, "/invitations"), {"email": email})
    envelope(res, 409, "already_member", "email")


def test_inviting_twice_is_409_already_invited(acme, api):
    assert api.call("POST", org_url(acme, "/invitations"), {"email": "new@acme.test"}).status_code == 201
    with creates_nothing():
        envelope(api.call("POST", org_url(acme, "/invitations"), {"email": "NEW@acme.test"}), 409, "already_invited")


@pytest.mark.parametrize("role", ["root", "OWNER", "", " member", "member\x00", 7, None, ["admin"]])
def test_unknown_roles_are_rejected(acme, api, role):
    with creates_nothing():
        res = api.call("POST", org_url(acme, "/invitations"), {"email": "new@acme.test", "role": role})
    envelope(res, 400, "validation_error", "role")


def test_a_duplicate_domain_is_409(acme, api):
    assert api.call("POST", org_url(acme, "/domains"), {"name": "example.com"}).status_code == 201
    for again in ("example.com", "EXAMPLE.com.", " example.com ", "ｅｘａｍｐｌｅ.com"):
        with creates_nothing():
            envelope(api.call("POST", org_url(acme, "/domains"), {"name": again}), 409, "domain_exists", "name")


def test_an_idn_domain_is_stored_as_punycode_and_its_duplicate_refused(acme, api):
    res = api.call("POST", org_url(acme, "/domains"), {"name": "Bücher.example"})
    assert res.status_code == 201, res.content
    assert res.json()["name"] == "xn--bcher-kva.example"
    with creates_nothing():
        res = api.call("POST", org_url(acme, "/domains"), {"name": "xn--bcher-kva.example"})
    envelope(res, 409, "domain_exists")


INVALID_DOMAINS = [
    "",
    "localhost",
    "-bad.com",
    "bad-.com",
    "a..b.com",
    ".example.com",
    "exa mple.com",
    "http://example.com",
    "example.com/path",
    "*.example.com",
    "_dmarc.example.com",
    "127.0.0.1",
    "[::1]",
    "example.c",
    "example.123",
    "a" * 64 + ".com",
    "\u200d.example",
    "exa\u0000mple.com",
    "example.com\nevil.com",
    "xn--.com",
]


@pytest.mark.parametrize("name", INVALID_DOMAINS, ids=range(len(INVALID_DOMAINS)))
def test_invalid_domain_names_are_400(acme, api, name):
    with creates_nothing():
        envelope(api.call("POST", org_url(acme, "/domains"), {"name": name}), 400, "validation_error", "name")


@pytest.mark.parametrize("days", [0, -1, 367, 10**20, "ten", "", 1.5, [30]])
def test_token_expiry_out_of_range_is_rejected(acme, api, sa_id, days):
    url = org_url(acme, f"/service-accounts/{sa_id}/tokens")
    with creates_nothing():
        res = api.call("POST", url, {"name": "ci", "scopes": ["org:read"], "expires_in_days": days})
    envelope(res, 400, "validation_error", "expires_in_days")


def test_token_expiry_bounds(acme, api, sa_id):
    url = org_url(acme, f"/service-accounts/{sa_id}/tokens")
    for days in (1, 366, None):
        res = api.call("POST", url, {"name": "ci", "scopes": ["org:read"], "expires_in_days": days})
        assert res.status_code == 201, res.content
        assert (res.json()["expires_at"] is None) == (days is None)


@pytest.mark.parametrize(
    "scopes",
    [
        ["org:read", "root"],
        ["ORG:READ"],
        [],
        [""],
        ["org:*"],
        ["org:read"] * 21,
        [123],
        "org:read",
        [None],
        [["org:read"]],
    ],
)
def test_unknown_scopes_are_rejected(acme, api, sa_id, scopes):
    url = org_url(acme, f"/service-accounts/{sa_id}/tokens")
    with creates_nothing():
        res = api.call("POST", url, {"name": "ci", "scopes": scopes})
    envelope(res, 400, "validation_error", "scopes" if not isinstance(scopes, list) or not scopes else "<any>")
    assert res.json()["error"]["param"].startswith("scopes")


# --- the portal's forms --------------------------------------------------------------------------
def assert_form_error(res, message: str) -> None:
    assert res.status_code == 400, (res.status_code, res.content[:300])
    assert res["Content-Type"].startswith("text/html")
    if escape(message) not in res.content.decode():
        pytest.fail(f"the 400 page does not show {message!r}")


@pytest.fixture
def portal(acme, login_client) -> Client:
    return login_client(acme.owner)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": ""}, "name must not be empty."),
        ({"name": "   "}, "name must not be empty."),
        ({"name": f"a{NUL}b"}, "name must not contain control characters."),
        ({"name": "x" * 101}, "name must be at most 100 characters."),
        ({"name": "Fine", "slug": "Not A Slug"}, "slug may hold only lowercase letters, digits and hyphens."),
        ({"name": "Fine", "slug": f"a{NUL}"}, "slug may hold only lowercase letters, digits and hyphens."),
        ({"name": "!!!"}, "Choose a name with at least one letter or digit."),
        ({"name": "Fine", "slug": "acme"}, "That slug is taken."),
    ],
)
def test_portal_org_create_rejects_garbage(portal, data, message):
    with creates_nothing():
        assert_form_error(portal.post("/orgs/new/", data), message)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"email": "not-an-email"}, "Enter a valid e-mail address."),
        ({"email": f"a{NUL}@acme.test"}, "Enter a valid e-mail address."),
        ({"email": "x" * 300 + "@acme.test"}, "Enter a valid e-mail address."),
        ({"email": "Member@acme.test"}, "That person is already a member."),
        ({"email": "new@acme.test", "role": "root"}, "role must be one of"),
        ({"email": "new@acme.test", "role": f"member{NUL}"}, "role must be one of"),
    ],
)
def test_portal_invite_rejects_garbage(acme, portal, data, message):
    with creates_nothing():
        assert_form_error(portal.post(f"/orgs/{acme.org.pk}/members/", data), message)


@pytest.mark.parametrize("name", ["", "localhost", "a..b.com", f"exa{NUL}mple.com", "\u200d.example", "x" * 300])
def test_portal_domains_reject_garbage(acme, portal, name):
    with creates_nothing():
        res = portal.post(f"/orgs/{acme.org.pk}/domains/", {"name": name})
    assert res.status_code == 400
    assert "domain name" in res.content.decode()


def test_portal_duplicate_domain(acme, portal):
    assert portal.post(f"/orgs/{acme.org.pk}/domains/", {"name": "example.com"}).status_code == 302
    with creates_nothing():
        assert_form_error(portal.post(f"/orgs/{acme.org.pk}/domains/", {"name": "Example.COM"}), "already listed")


TOKEN = {"op": "token_create", "token_name": "t", "scopes": ["org:read"]}


@pytest.fixture
def target_sa(acme) -> ServiceAccount:
    return ServiceAccount.objects.create(org=acme.org, name="robot", role=Role.DEVELOPER)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"op": "service_account_create", "name": ""}, "name must not be empty."),
        ({"op": "service_account_create", "name": f"r{NUL}"}, "name must not contain control characters."),
        ({"op": "service_account_create", "name": "r", "description": f"d{NUL}"}, "description must not contain"),
        ({"op": "service_account_create", "name": "r", "role": "root"}, "role must be one of"),
        ({**TOKEN, "expires_in_days": "²"}, "Choose an expiry."),
        ({**TOKEN, "expires_in_days": "9" * 5000}, "between"),
        ({**TOKEN, "expires_in_days": "-1"}, "Choose an expiry."),
        ({**TOKEN, "expires_in_days": "0"}, "between 1 and"),
        ({**TOKEN, "expires_in_days": "367"}, "between 1 and"),
        ({"op": "token_create", "token_name": "t", "scopes": ["root"]}, "Unknown scope(s): root."),
        ({"op": "token_create", "token_name": "t"}, "Choose at least one scope."),
        ({"op": "token_create", "token_name": "", "scopes": ["org:read"]}, "name must not be empty."),
        ({**TOKEN, "service_account": "sa_x"}, "No such"),
        ({"op": "token_revoke", "token": "tok_../../"}, "No such"),
        ({"op": "explode"}, "Unknown action."),
    ],
)
def test_portal_tokens_reject_garbage(acme, portal, target_sa, data, message):
    data = {"service_account": target_sa.pk, **data}
    with creates_nothing():
        assert_form_error(portal.post(f"/orgs/{acme.org.pk}/tokens/", data), message)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"ip_allowlist": "banana"}, "is not an IP address or CIDR range."),
        ({"ip_allowlist": "127.0.0.1\n10.0.0.0/33"}, "is not an IP address or CIDR range."),
        ({"ip_allowlist": f"127.0.0.1{NUL}"}, "is not an IP address or CIDR range."),
        ({"ip_allowlist": "10.0.0.0/8"}, "The allowlist must include your own address (127.0.0.1)."),
        ({"require_mfa": "on"}, "Enrol two-factor authentication yourself before requiring it."),
        ({"max_session_age_minutes": "abc"}, "Enter a whole number of minutes."),
        ({"max_session_age_minutes": "²"}, "Enter a whole number of minutes."),
        ({"max_session_age_minutes": "-5"}, "Enter a whole number of minutes."),
        ({"max_session_age_minutes": "9" * 5000}, "max_session_age_minutes must be between 5 and 129600."),
        ({"max_session_age_minutes": "4"}, "max_session_age_minutes must be between 5 and 129600."),
    ],
)
def test_portal_security_rejects_garbage(acme, portal, data, message):
    with creates_nothing():
        assert_form_error(portal.post(f"/orgs/{acme.org.pk}/security/", data), message)
    acme.org.refresh_from_db()
    assert (acme.org.ip_allowlist, acme.org.require_mfa, acme.org.max_session_age_minutes) == ([], False, None)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"op": "rename", "name": f"A{NUL}"}, "name must not contain control characters."),
        ({"op": "workspace_create", "ws_name": ""}, "name must not be empty."),
        ({"op": "workspace_create", "ws_name": "W", "ws_description": f"d{NUL}"}, "description must not contain"),
        ({"op": "workspace_create", "ws_name": "Default"}, "A workspace with that slug exists."),
        ({"op": "workspace_create", "ws_name": "!!!"}, "Choose a name with at least one letter or digit."),
        ({"op": "workspace_delete", "workspace": "wsp_nope"}, "No such workspace."),
    ],
)
def test_portal_overview_rejects_garbage(acme, portal, data, message):
    with creates_nothing():
        assert_form_error(portal.post(f"/orgs/{acme.org.pk}/", data), message)


@pytest.mark.parametrize(
    "query",
    [
        {"since": "2024-13-45T99:99:99"},
        {"since": "2024-12-31T10:00:00+23:59"},
        {"until": "0001-01-01T00:00:00+01:00"},
        {"until": "not a date"},
        {"action": NUL},
        {"actor": f"usr_{NUL}"},
        {"target": "x" * 10_000},
        {"before": "garbage"},
        {"before": NUL},
    ],
)
def test_portal_audit_filters_never_500(acme, portal, query):
    res = portal.get(f"/orgs/{acme.org.pk}/audit/", query)
    assert res.status_code in (200, 400), res.status_code


@pytest.mark.parametrize(
    "path", ["/orgs/..%2F..%2F/", "/orgs/org_x/members/", "/orgs/%00/security/", "/orgs/' OR 1=1/"]
)
def test_portal_hostile_org_ids_are_404_pages(portal, path):
    res = portal.get(path)
    assert res.status_code == 404
    assert res["Content-Type"].startswith("text/html")
    assert res.has_header("X-Request-Id")


def test_portal_post_with_a_huge_body_is_not_500(acme, portal):
    with creates_nothing():
        res = portal.post(f"/orgs/{acme.org.pk}/domains/", {"name": "x" * (3 * 1024 * 1024)})
    assert res.status_code in (400, 413)

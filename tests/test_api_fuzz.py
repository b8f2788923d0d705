"""Property-based fuzzing of the whole /api/v1 surface, driven by its own OpenAPI document.

Schemathesis reads /api/v1/openapi.json from the WSGI application and, for every operation,
Hypothesis generates valid and invalid requests (negative mode: wrong types, out-of-range
numbers, missing fields, a missing Authorization header …). Each request is sent in-process to
``config.wsgi.application`` as one of three callers of ``acme``: an owner service account's
token and an admin's token (both with every scope) and Alice's signed-in session. Path
parameters are sometimes generated and sometimes the ids of real rows (ours, and another
tenant's), and valid bodies sometimes get realistic values (e-mails, roles, scopes, domains,
IP ranges), so generation reaches the services instead of stopping at "no such organisation".

Every response must satisfy the public contract:
- never a 5xx;
- every 4xx/5xx body is exactly ``{"error": {"type", "code", "message", "param", "request_id"}}``
  (validation errors may add a ``details`` list), whose request id is the response header's;
- every response carries ``X-Request-Id``, echoing a valid incoming one;
- documented responses conform to the schema, and data the schema forbids is rejected with a
  4xx (schemathesis' own checks).

The run is deterministic (``derandomize``), offline and bounded (``MAX_EXAMPLES`` per
operation). The examples of one operation share its test transaction, so state accumulates
the way it would against a live server.
"""

from __future__ import annotations

import datetime as dt
import json
import os

import pytest
import schemathesis
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core import signals
from django.db import close_old_connections
from django.middleware.csrf import _get_new_csrf_string
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
)

from apps.accounts.models import UserSession
from apps.certification.models import SbomRule
from apps.core import clock
from apps.core.http import accept_request_id
from apps.events.catalog_sync import sync_catalog
from apps.orgs import services
from apps.orgs.models import Group, Invitation, Membership, Role, ServiceAccount, Workspace
from apps.orgs.policy import SCOPES, Principal
from config.wsgi import application
from tests.conftest import issue_token
from tests.extensions.conftest import publish_draft
from tests.orgs.marketplace_endpoints import AREAS
from tests.orgs.test_authorization import make_review_run

# Per operation. PLAZA_FUZZ_EXAMPLES=500 for a longer hunt; the default keeps the suite quick.
MAX_EXAMPLES = int(os.environ.get("PLAZA_FUZZ_EXAMPLES", "35"))

SCHEMA = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application)
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]

ERROR_KEYS = {"type", "code", "message", "param", "request_id"}
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


# --- the world the fuzzer acts in ------------------------------------------------------------------
@pytest.fixture
def wsgi_in_test_transaction():
    """Django's WSGI handler closes "old" database connections when a request starts and ends;
    inside the test transaction that would drop it. Django's test client suspends the same
    receiver for the same reason."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


def _targets(tenant) -> dict[str, list[str]]:
    """One row of every kind in ``tenant``'s organisation; the ids per path parameter name."""
    org = tenant.org
    person = Principal(kind="user", user=tenant.owner, mfa_verified=True)
    sa = ServiceAccount.objects.create(org=org, name="fuzz-target", role=Role.DEVELOPER)
    token, _ = services.token_create(principal=person, service_account=sa, name="target", scopes=["org:read"])
    domain = services.domain_add(org=org, name=f"{org.slug}-fuzz.example")
    services.workspace_create(org=org, name="Fuzz target")
    invitation = Invitation.objects.create(
        org=org,
        email=f"invitee@{org.slug}.example",
        role=Role.MEMBER,
        token_hash=f"{org.slug}-fuzz".ljust(64, "0"),
        expires_at=clock.now() + dt.timedelta(days=7),
    )
    extension, version, key = _publishing_targets(org, person)
    run = make_review_run(extension, key)
    group = Group.objects.create(org=org, display_name=f"{org.slug} fuzz group")
    rule = SbomRule.objects.create(org=org, effect="deny", name=f"{org.slug}-fuzz-component")
    platform_rule = SbomRule.objects.create(org=None, effect="deny", name=f"{org.slug}-fuzz-platform-component")
    ids = {
        "org_id": [org.pk],
        "extension_id": [extension.pk],
        "version_id": [version.pk],
        "key_id": [key.pk],
        "name": ["order.created", "customer.created"],
        "version": [1],
        # (in a stable order: ids made in the same millisecond sort randomly, and runs must repeat)
        "workspace_id": list(Workspace.objects.filter(org=org).order_by("slug").values_list("pk", flat=True)),
        "member_id": list(Membership.objects.filter(org=org).order_by("role").values_list("pk", flat=True)),
        "invitation_id": [invitation.pk],
        "domain_id": [domain.pk],
        "service_account_id": [sa.pk],
        "token_id": [token.pk],
        "run_id": [run.pk],
        "group_id": [group.pk],
        "rule_id": [rule.pk],
        "platform_rule_id": [platform_rule.pk],
    }
    # The marketplace areas' rows (optional ``fuzz_targets(tenant, ids)`` in their modules, see
    # tests/orgs/marketplace_endpoints.py).
    for area in AREAS:
        if hasattr(area, "fuzz_targets"):
            ids.update(area.fuzz_targets(tenant, ids))
    return ids


def _publishing_targets(org, person):
    """An extension with one signed draft version, and the key that signed it."""
    return publish_draft(org, Ed25519PrivateKey.generate(), name="fuzz-target", key_name="fuzz")


def _session_caller(user) -> dict:
    """Cookies and headers of a signed-in browser session (with a CSRF token for unsafe methods)."""
    client = Client(REMOTE_ADDR="127.0.0.1")
    client.force_login(user)
    csrf = _get_new_csrf_string()
    return {
        "cookies": {"sessionid": client.cookies["sessionid"].value, "csrftoken": csrf},
        "headers": {"X-CSRFToken": csrf},
    }


@pytest.fixture
def world(acme, globex, wsgi_in_test_transaction) -> dict:
    """Who calls (acme's owner and admin tokens, Alice's session) and, per path parameter, the ids
    of real rows: ``ours`` in acme, ``theirs`` in globex."""
    callers = [
        {"headers": {"Authorization": f"Bearer {issue_token(acme.org, role=Role.OWNER)}"}},
        {"headers": {"Authorization": f"Bearer {issue_token(acme.org, role=Role.ADMIN)}"}},
        _session_caller(acme.owner),
    ]
    # Another of Alice's sessions, to be signed out through the API (not the one calling).
    other_session = _session_caller(acme.owner)["cookies"]["sessionid"]
    sync_catalog()
    ours, theirs = _targets(acme), _targets(globex)
    ours["session_id"] = [UserSession.objects.get(session_key=other_session).pk]
    theirs_session = _session_caller(globex.owner)["cookies"]["sessionid"]
    theirs["session_id"] = [UserSession.objects.get(session_key=theirs_session).pk]
    return {"callers": callers, "ours": ours, "theirs": theirs}


# --- strategies ------------------------------------------------------------------------------------
def _path_parameter_strategies(operation, world) -> list:
    """Dictionaries of real path parameters: all ours (most of the time), our organisation with
    another tenant's object, or the other tenant's organisation."""
    names = [p.name for p in operation.path_parameters]
    if not names:
        return []
    ours, theirs = world["ours"], world["theirs"]

    def pick(source, overrides=None):
        overrides = overrides or {}
        return st.fixed_dictionaries({name: st.sampled_from(overrides.get(name, source[name])) for name in names})

    out = [pick(ours), pick(ours), pick(theirs)]
    if len(names) > 1:
        out.append(pick(theirs, {"org_id": ours["org_id"]}))
    return out


def case_strategy(operation, world):
    """Positive and negative cases, with generated or real path parameters. Negative mode mostly
    drops or garbles the Authorization header (for operations whose only inputs are path
    parameters, it can do nothing else), so it gets only a branch or two of the several."""
    real = _path_parameter_strategies(operation, world)
    branches = [operation.as_strategy(generation_mode=GenerationMode.POSITIVE)]
    branches += [p.flatmap(lambda params: operation.as_strategy(path_parameters=params)) for p in real]
    branches.append(operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))
    if (operation.body or operation.query) and real:
        # Against real rows, spend negative cases on the body and query, not on the header.
        branches.append(
            real[0]
            .flatmap(
                lambda params: operation.as_strategy(generation_mode=GenerationMode.NEGATIVE, path_parameters=params)
            )
            .filter(lambda case: not case.meta.is_negative_at(ParameterLocation.HEADER))
        )
    return st.one_of(branches)


_LABELS = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=120)
REALISTIC = {
    "email": st.one_of(
        st.emails(),
        st.sampled_from(["member@acme.test", "ADMIN@ACME.TEST", "invitee@acme.example", "charlie@globex.test"]),
    ),
    "role": st.sampled_from([*Role.values, "Owner", "root", ""]),
    "scopes": st.lists(st.sampled_from([*SCOPES, "admin", "org:*"]), min_size=1, max_size=5),
    "slug": st.one_of(st.from_regex(r"[a-z0-9]{1,12}(-[a-z0-9]{1,12})?", fullmatch=True), st.just("default")),
    "ip_allowlist": st.lists(
        st.sampled_from(["127.0.0.1", "127.0.0.0/8", "10.0.0.0/8", "::1", "2001:db8::/32", "300.1.1.1", "x"]),
        max_size=4,
    ),
    "max_session_age_minutes": st.one_of(st.none(), st.integers(5, 129600)),
    "name": _LABELS,
}
DOMAIN_NAMES = st.one_of(
    st.sampled_from(["acme-fuzz.example", "example.com", "bücher.example", "xn--bcher-kva.example", "a..b", "-x.com"]),
    st.from_regex(r"[a-z0-9]{1,20}\.(com|org|example)", fullmatch=True),
)


def realistic_body(data, operation, body: dict) -> None:
    """Replace some generated values with plausible ones, so requests get past format checks."""
    for key in list(body):
        strategy = REALISTIC.get(key)
        if key == "name" and operation.path.endswith("/domains"):
            strategy = DOMAIN_NAMES
        if strategy is not None and data.draw(st.booleans(), label=f"realistic {key}"):
            body[key] = data.draw(strategy, label=key)


# --- checks ----------------------------------------------------------------------------------------
def check_error_envelope(ctx, response, case) -> None:
    """Every 4xx/5xx answer is the one documented envelope, quoting the response's request id."""
    if response.status_code < 400:
        return
    content_type = (response.headers.get("content-type") or [""])[0]
    assert content_type.startswith("application/json"), f"error with content type {content_type!r}"
    try:
        body = json.loads(response.content)
    except ValueError as exc:
        raise AssertionError(f"error body is not JSON: {response.content[:200]!r}") from exc
    assert isinstance(body, dict) and set(body) == {"error"}, f"not an error envelope: {body!r}"
    error = body["error"]
    assert isinstance(error, dict), f"not an error envelope: {body!r}"
    assert ERROR_KEYS <= set(error) <= ERROR_KEYS | {"details"}, f"wrong error keys: {sorted(error)}"
    for key in ("type", "code", "message", "request_id"):
        assert isinstance(error[key], str) and error[key], f"error.{key} must be a non-empty string: {error!r}"
    assert error["param"] is None or isinstance(error["param"], str), f"error.param: {error['param']!r}"
    assert isinstance(error.get("details", []), list), f"error.details: {error['details']!r}"
    header = (response.headers.get("x-request-id") or [None])[0]
    assert error["request_id"] == header, f"request_id {error['request_id']!r} != X-Request-Id {header!r}"


def check_request_id(ctx, response, case) -> None:
    """Every response carries one well-formed X-Request-Id, echoing a valid incoming one."""
    values = response.headers.get("x-request-id") or []
    assert len(values) == 1 and values[0], f"X-Request-Id missing or repeated: {values!r}"
    assert accept_request_id(values[0]) == values[0], f"malformed X-Request-Id {values[0]!r}"
    sent = response.request.headers.get("X-Request-Id")
    if sent is not None and accept_request_id(sent) == sent:
        assert values[0] == sent, f"valid incoming X-Request-Id {sent!r} not echoed (got {values[0]!r})"


CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    content_type_conformance,
    negative_data_rejection,
    check_error_envelope,
    check_request_id,
]
REQUEST_IDS = st.one_of(
    st.none(), st.sampled_from(["req_fuzz-0001", "client:trace.42", "x", "bad id with spaces", "a" * 129])
)


# --- the test --------------------------------------------------------------------------------------
@pytest.mark.parametrize("operation", OPERATIONS, ids=[op.label for op in OPERATIONS])
def test_api_operation_honours_the_contract(operation, world):
    cases = case_strategy(operation, world)
    callers = st.sampled_from(world["callers"])
    # The schema declares bearer auth only: a negative case "without Authorization" that still
    # carries a session cookie is rightly accepted, so negative cases use the tokens.
    token_callers = st.sampled_from([c for c in world["callers"] if "cookies" not in c])

    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @given(data=st.data())
    def run(data):
        case = data.draw(cases, label="case")
        positive = case.meta.generation.mode.is_positive
        caller = data.draw(callers if positive else token_callers, label="caller")
        if positive and isinstance(case.body, dict):
            realistic_body(data, operation, case.body)
        checks, headers = CHECKS, {}
        if "cookies" in caller:
            # A session is the alternative to the bearer scheme the schema declares: drop the
            # generated Authorization (it would be tried instead), and do not count the missing
            # "required" header as invalid data the API should have refused.
            case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
            checks = [check for check in CHECKS if check is not negative_data_rejection]
            if case.method in UNSAFE:
                headers.update(caller["headers"])
        elif not case.meta.is_negative_at(ParameterLocation.HEADER):
            # (a negative case that drops or garbles Authorization, the one header, is sent as generated)
            headers.update(caller["headers"])
        request_id = data.draw(REQUEST_IDS, label="X-Request-Id")
        if request_id is not None:
            headers["X-Request-Id"] = request_id
        response = case.call(
            app=application,
            headers=headers,
            cookies=caller.get("cookies"),
            environ_overrides={"REMOTE_ADDR": "127.0.0.1"},
        )
        case.validate_response(response, checks=checks, headers=headers, transport_kwargs={"app": application})

    run()


def test_every_operation_is_fuzzed():
    """The schema is read from the running application, and it is not empty or partial."""
    labels = {op.label for op in OPERATIONS}
    assert len(OPERATIONS) >= 30
    assert "PUT /api/v1/orgs/{org_id}/policy" in labels
    assert "POST /api/v1/orgs/{org_id}/service-accounts/{service_account_id}/tokens" in labels

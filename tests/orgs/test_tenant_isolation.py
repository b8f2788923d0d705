"""Tenants cannot see each other: another organisation's ids are 404 (never 403, which would
confirm they exist), and nothing in the other organisation changes.

The API cases run over the endpoint table of ``test_authorization``, so every endpoint is covered.
"""

from __future__ import annotations

import datetime as dt
import secrets
from urllib.parse import quote

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from apps.accounts.models import UserSession
from apps.core import clock
from apps.core.crypto import secret_hash
from apps.core.ids import new_id
from apps.orgs.models import ApiToken, Role, ServiceAccount
from tests.conftest import ApiClient, issue_token, rolled_back
from tests.orgs.marketplace_endpoints import AREAS
from tests.orgs.test_authorization import (
    ENDPOINTS,
    KINDS,
    NEW_KEY,
    assert_error,
    make_platform,
    make_targets,
    own_session_id,
    session_client,
    snapshot,
)

ORG_ENDPOINTS = [e for e in ENDPOINTS if e.org_scoped]
# Event type names and schema versions are names, not ids (tests/events covers unknown ones).
_NOT_IDS = {"name", "version"}
for _area in AREAS:
    _NOT_IDS |= getattr(_area, "NOT_IDS", set())
# Endpoints naming an object of the organisation besides the organisation itself (slot and feature
# names are shared by every tenant: not objects of one).
OBJECT_ENDPOINTS = [e for e in ORG_ENDPOINTS if any(p not in _NOT_IDS | {"org_id"} for p in e.placeholders)]


@pytest.fixture(autouse=True)
def _static_dns(settings):
    settings.PLAZA_DNS_RESOLVER = "apps.orgs.dns.StaticResolver"


def owner_client(kind: str, tenant, api_for) -> ApiClient:
    """The most privileged caller a tenant has: its owner, signed in or holding an owner token."""
    if kind == "session":
        return session_client(tenant.owner)
    return api_for(tenant.org, role=Role.OWNER)


# --- the API: another tenant's ids ----------------------------------------------------------------
# Each test builds its objects once; every case runs in a rolled-back savepoint (tests/conftest.py).
@pytest.mark.parametrize("endpoint", ORG_ENDPOINTS, ids=[e.id for e in ORG_ENDPOINTS])
def test_another_organisations_ids_are_not_found(acme, globex, api_for, subtests, endpoint):
    # given one of each object in globex
    theirs = make_targets(globex)
    before = snapshot(globex.org)
    for kind in KINDS:
        with subtests.test(kind=kind), rolled_back():
            # when acme's owner calls the endpoint with globex's organisation and object ids
            res = owner_client(kind, acme, api_for).call(endpoint.method, endpoint.url(theirs.ids()), endpoint.body)
            # then globex does not exist for them, and nothing in it changed
            assert_error(res, 404, "not_found")
            assert snapshot(globex.org) == before


@pytest.mark.parametrize("endpoint", OBJECT_ENDPOINTS, ids=[e.id for e in OBJECT_ENDPOINTS])
def test_another_organisations_objects_are_not_found_under_your_own(acme, globex, api_for, subtests, endpoint):
    # given acme's and globex's objects
    mine, theirs = make_targets(acme), make_targets(globex)
    before = snapshot(globex.org)
    for kind in KINDS:
        with subtests.test(kind=kind), rolled_back():
            # when acme's owner names acme as the organisation but globex's object
            url = endpoint.url(theirs.ids(org_id=mine.org.pk))
            res = owner_client(kind, acme, api_for).call(endpoint.method, url, endpoint.body)
            # then the object does not exist for them
            assert_error(res, 404, "not_found")
            assert snapshot(globex.org) == before


@pytest.mark.parametrize("endpoint", ORG_ENDPOINTS, ids=[e.id for e in ORG_ENDPOINTS])
def test_another_organisations_token_cannot_reach_yours(acme, globex, api_for, endpoint):
    # given globex's owner token, and acme's objects
    mine = make_targets(acme)
    theirs = api_for(globex.org, role=Role.OWNER)
    before = snapshot(acme.org)
    # when it calls the endpoint with acme's ids
    res = theirs.call(endpoint.method, endpoint.url(mine.ids()), endpoint.body)
    # then acme does not exist for it, and nothing in acme changed
    assert_error(res, 404, "not_found")
    assert snapshot(acme.org) == before


def test_another_persons_session_is_not_found(acme, globex):
    theirs = make_targets(globex)
    res = session_client(acme.owner).call("DELETE", f"me/sessions/{theirs.session.pk}")
    assert_error(res, 404, "not_found")
    assert UserSession.objects.get(pk=theirs.session.pk).ended_at is None


def test_lists_show_only_your_own_organisation(acme, globex, api_for):
    make_targets(acme)
    make_targets(globex)
    for client in (session_client(acme.owner), api_for(acme.org, role=Role.OWNER)):
        orgs = client.call("GET", "orgs").json()["data"]
        assert [o["id"] for o in orgs] == [acme.org.pk]
        tokens = client.call("GET", f"orgs/{acme.org.pk}/tokens").json()["data"]
        acme_tokens = set(ApiToken.objects.filter(org=acme.org).values_list("pk", flat=True))
        assert tokens and {t["id"] for t in tokens} <= acme_tokens


# --- the API: ids that are not ids ----------------------------------------------------------------
# A real id of another kind of object, for each placeholder (a user id where a membership id goes…).
_OTHER_KIND = {
    "org_id": lambda t: t.workspace.pk,
    "workspace_id": lambda t: t.domain.pk,
    "member_id": lambda t: t.member.user.pk,
    "invitation_id": lambda t: t.member.pk,
    "domain_id": lambda t: t.workspace.pk,
    "service_account_id": lambda t: t.token.pk,
    "token_id": lambda t: t.service_account.pk,
    "session_id": lambda t: t.member.pk,
    "extension_id": lambda t: t.version.pk,
    "version_id": lambda t: t.extension.pk,
    "key_id": lambda t: t.token.pk,
    "run_id": lambda t: t.version.pk,
    "rule_id": lambda t: t.extension.pk,
    "platform_rule_id": lambda t: t.sbom_rule.pk,  # an org's rule is not a platform rule
    "group_id": lambda t: t.member.pk,
}
# The marketplace areas add theirs (an optional ``OTHER_KIND`` in their modules, taking Targets;
# see tests/orgs/marketplace_endpoints.py).
for _area in AREAS:
    _OTHER_KIND.update(getattr(_area, "OTHER_KIND", {}))
BAD_IDS = ["garbage", "too_short", "lowercase", "unknown", "other_kind", "injection"]


def bad_id(variant: str, placeholder: str, real: str, targets) -> str:
    return {
        "garbage": lambda: "not-an-id",
        "too_short": lambda: real[:-1],
        "lowercase": lambda: real.lower(),
        "unknown": lambda: new_id(real.split("_")[0]),  # well formed, right prefix, no such row
        "other_kind": lambda: _OTHER_KIND[placeholder](targets),
        "injection": lambda: quote(f"{real}' OR '1'='1", safe=""),
    }[variant]()


def _id_placeholders(endpoint) -> list[str]:
    return [p for p in endpoint.placeholders if p not in _NOT_IDS]


def _malformed_cases(endpoint):
    for placeholder in _id_placeholders(endpoint):
        # the org id is checked differently for people and for tokens; object ids alike
        for kind in KINDS if placeholder == "org_id" else ["session"]:
            for variant in BAD_IDS:
                yield placeholder, kind, variant


ID_ENDPOINTS = [e for e in ENDPOINTS if _id_placeholders(e)]


@pytest.mark.parametrize("endpoint", ID_ENDPOINTS, ids=[e.id for e in ID_ENDPOINTS])
def test_malformed_and_mistyped_ids_are_not_found(acme, api_for, subtests, endpoint):
    # given acme's own objects
    mine = make_targets(acme)
    if endpoint.staff:  # staff endpoints refuse everyone else before looking at ids (403)
        make_platform(acme.org)
    for placeholder, kind, variant in _malformed_cases(endpoint):
        with subtests.test(placeholder=placeholder, kind=kind, variant=variant), rolled_back():
            # and acme's owner
            client = owner_client(kind, acme, api_for)
            ids = mine.ids()
            if endpoint.id.startswith("DELETE /me/sessions"):
                ids["session_id"] = own_session_id(client)
            ids[placeholder] = bad_id(variant, placeholder, ids[placeholder], mine)
            before = snapshot(acme.org)
            # when one id in the path is broken
            res = client.call(endpoint.method, endpoint.url(ids), endpoint.body)
            # then it names nothing
            assert_error(res, 404)
            assert snapshot(acme.org) == before


# --- the API: credentials that no longer work ------------------------------------------------------
def _spoil(token_state: str, org) -> ApiClient:
    if token_state == "anonymous":
        return ApiClient()
    if token_state == "unknown":
        return ApiClient("plz_" + secrets.token_urlsafe(30))
    raw = issue_token(org, role=Role.OWNER)
    token = ApiToken.objects.get(token_hash=secret_hash(raw))
    if token_state == "revoked":
        ApiToken.objects.filter(pk=token.pk).update(revoked_at=clock.now())
    elif token_state == "expired":
        ApiToken.objects.filter(pk=token.pk).update(expires_at=clock.now() - dt.timedelta(seconds=1))
    elif token_state == "disabled_account":
        ServiceAccount.objects.filter(pk=token.service_account_id).update(disabled_at=clock.now())
    return ApiClient(raw)


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[e.id for e in ENDPOINTS])
def test_unusable_credentials_are_unauthenticated_everywhere(acme, subtests, endpoint):
    mine = make_targets(acme)
    for token_state in ["revoked", "expired", "disabled_account", "unknown", "anonymous"]:
        with subtests.test(token_state=token_state), rolled_back():
            # given an owner token of acme that has been revoked or has expired (or no usable credential)
            client = _spoil(token_state, acme.org)
            before = snapshot(acme.org)
            # when it calls the endpoint
            res = client.call(endpoint.method, endpoint.url(mine.ids()), endpoint.body)
            # then it is not authenticated, and nothing changed
            if endpoint.public and token_state == "anonymous":  # the storefront serves anonymous callers
                assert res.status_code == endpoint.ok, res.content[:300]
                continue
            assert_error(res, 401, "unauthenticated")
            assert res["WWW-Authenticate"].startswith("Bearer")
            assert snapshot(acme.org) == before


# --- the portal -----------------------------------------------------------------------------------
PORTAL_PAGES = [
    "org_overview",
    "org_members",
    "org_domains",
    "org_tokens",
    "org_security",
    "org_audit",
    "extension_list",
    "signing_key_list",
    "org_console",
    "org_console_members",
    "org_console_groups",
    "org_console_audit",
    "sso_console",
    "console_sessions",
    "console_scim",
]
# Pages about one object: the URL's other parameters.
PORTAL_ACTIONS = {
    "member_update": ("member_id",),
    "member_remove": ("member_id",),
    "invitation_revoke": ("invitation_id",),
    "domain_verify": ("domain_id",),
    "domain_remove": ("domain_id",),
    "extension_detail": ("extension_id",),
    "version_detail": ("extension_id", "version_id"),
    "invocation_list": ("extension_id",),
    "certification_run": ("run_id",),
    "org_console_group": ("group_id",),
    "member_security": ("member_id",),
    "console_member_sign_out": ("member_id",),
    "console_member_mfa_reset": ("member_id",),
}
# Forms posted to each page, as the page would post them.
PAGE_FORMS = {
    "org_overview": {"op": "rename", "name": "Taken over"},
    "org_members": {"email": "mole@example.com", "role": "owner"},
    "org_domains": {"name": "mole.example"},
    "org_tokens": {"op": "service_account_create", "name": "mole", "role": "owner"},
    "org_security": {"max_session_age_minutes": "5", "ip_allowlist": "10.0.0.0/8"},
    "org_audit": {},
    "extension_list": {"name": "mole"},
    "signing_key_list": {"op": "register", "name": "mole", "public_key": NEW_KEY},
    "org_console": {},
    "org_console_members": {},
    "org_console_groups": {"display_name": "Moles", "role": "admin"},
    "org_console_audit": {},
    "sso_console": {"action": "save", "issuer": "https://mole.example", "client_id": "mole", "client_secret": "mole"},
    "console_sessions": {},
    "console_scim": {"op": "issue", "name": "mole"},
}
# The marketplace areas add their organisation pages the same way (optional ``PORTAL_PAGES`` and
# ``PAGE_FORMS`` in their modules; see tests/orgs/marketplace_endpoints.py).
# ``PORTAL_EXEMPT`` names pages whose object is public (name -> why), which the tables skip.
PORTAL_EXEMPT: dict[str, str] = {}
for _area in AREAS:
    PORTAL_PAGES += getattr(_area, "PORTAL_PAGES", [])
    PORTAL_ACTIONS.update(getattr(_area, "PORTAL_ACTIONS", {}))
    PAGE_FORMS.update(getattr(_area, "PAGE_FORMS", {}))
    PORTAL_EXEMPT.update(getattr(_area, "PORTAL_EXEMPT", {}))


def _org_url_names() -> set[str]:
    def walk(patterns, prefix=""):
        for p in patterns:
            if isinstance(p, URLResolver):
                yield from walk(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern) and "<str:org_id>" in prefix + str(p.pattern):
                yield p.name

    return set(walk(get_resolver().url_patterns))


def _portal_url(name: str, ids: dict) -> str:
    kwargs = {"org_id": ids["org_id"]}
    for param in PORTAL_ACTIONS.get(name, ()):
        kwargs[param] = ids[param]
    return reverse(name, kwargs=kwargs)


def assert_not_found_page(res):
    assert res.status_code == 404, res.status_code
    assert "errors/404.html" in [t.name for t in res.templates]


def test_portal_tables_cover_every_organisation_page():
    assert _org_url_names() == set(PORTAL_PAGES) | set(PORTAL_ACTIONS) | set(PORTAL_EXEMPT)


@pytest.mark.parametrize("name", PORTAL_PAGES)
def test_portal_pages_of_another_organisation_are_not_found(acme, globex, subtests, name):
    # given alice, acme's owner
    theirs = make_targets(globex)
    before = snapshot(globex.org)
    for method in ["GET", "POST"]:
        with subtests.test(method=method), rolled_back():
            alice = session_client(acme.owner)
            # when she opens (or posts a form to) a page of globex
            url = _portal_url(name, theirs.ids())
            res = alice.get(url) if method == "GET" else alice.post(url, PAGE_FORMS[name])
            # then it does not exist for her
            assert_not_found_page(res)
            assert snapshot(globex.org) == before


@pytest.mark.parametrize("name", list(PORTAL_ACTIONS))
def test_portal_actions_on_another_organisations_objects_are_not_found(acme, globex, subtests, name):
    # given globex's objects
    mine, theirs = make_targets(acme), make_targets(globex)
    before = snapshot(globex.org)
    for org in ["theirs", "mine"]:
        with subtests.test(org=org), rolled_back():
            alice = session_client(acme.owner)
            # when alice acts on a globex object, under globex's id or under acme's
            ids = theirs.ids() if org == "theirs" else theirs.ids(org_id=mine.org.pk)
            res = alice.post(_portal_url(name, ids), {"role": "member"})
            # then it does not exist for her, and globex is unchanged
            assert_not_found_page(res)
            assert snapshot(globex.org) == before


@pytest.mark.parametrize(
    ("page", "form"),
    [
        ("org_overview", lambda t: {"op": "workspace_delete", "workspace": t.workspace.pk}),
        ("org_tokens", lambda t: {"op": "service_account_disable", "service_account": t.service_account.pk}),
        ("org_tokens", lambda t: {"op": "token_revoke", "token": t.token.pk}),
        (
            "org_tokens",
            lambda t: {
                "op": "token_create",
                "service_account": t.service_account.pk,
                "token_name": "mole",
                "scopes": ["org:read"],
                "expires_in_days": "7",
            },
        ),
        ("signing_key_list", lambda t: {"op": "revoke", "key": t.signing_key.pk}),
        ("signing_key_list", lambda t: {"op": "rotate", "key": t.signing_key.pk, "name": "m", "public_key": NEW_KEY}),
    ],
    ids=["workspace_delete", "service_account_disable", "token_revoke", "token_create", "key_revoke", "key_rotate"],
)
def test_portal_forms_naming_another_organisations_objects_change_nothing(acme, globex, page, form):
    # given alice on one of acme's pages
    mine, theirs = make_targets(acme), make_targets(globex)
    alice = session_client(acme.owner)
    before = snapshot(globex.org)
    # when the form names a globex object
    res = alice.post(reverse(page, kwargs={"org_id": mine.org.pk}), form(theirs))
    # then the page reports no such object, and globex is unchanged
    assert res.status_code == 400, res.status_code
    assert snapshot(globex.org) == before


@pytest.mark.parametrize("name", PORTAL_PAGES)
def test_portal_pages_with_malformed_organisation_ids_are_not_found(acme, subtests, name):
    mine = make_targets(acme)
    alice = session_client(acme.owner)
    for org_id in ["not-an-id", "org_123", "unknown", "workspace_id"]:
        with subtests.test(org_id=org_id):
            value = {"unknown": new_id("org"), "workspace_id": mine.workspace.pk}.get(org_id, org_id)
            assert_not_found_page(alice.get(reverse(name, kwargs={"org_id": value})))


def test_the_org_switcher_does_not_switch_to_another_organisation(acme, globex):
    res = session_client(acme.owner).get(reverse("org_switch"), {"org": globex.org.pk})
    assert res.status_code == 302
    assert globex.org.pk not in res["Location"]

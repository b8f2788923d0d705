"""Who may call what: every operation of /api/v1/ × every role, as a signed-in person and as a
service-account token.

``ENDPOINTS`` is the table. Each row names the policy actions the operation checks, in order; the
expected outcome for a role follows from ``ACTIONS`` in ``apps/orgs/policy.py`` (allowed: the row's
success status; denied: 403 ``role``). A schema check keeps the table complete, so a new endpoint
without a row fails the suite. The tenant-isolation tests reuse the table and its helpers.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.test import Client
from guardian.shortcuts import assign_perm

from apps.accounts.models import UserSession
from apps.audit.models import AuditEvent
from apps.certification.models import CertificationRun, SbomRule
from apps.core import clock
from apps.core.crypto import secret_hash
from apps.events.catalog_sync import sync_catalog
from apps.events.models import EventSchema, EventType
from apps.extensions.models import Extension, ExtensionVersion, SigningKey
from apps.extensions.signing import sign_package
from apps.orgs.models import (
    ApiToken,
    Domain,
    Group,
    Invitation,
    Membership,
    Organization,
    Role,
    ServiceAccount,
    Workspace,
)
from apps.orgs.policy import ACTIONS, SCOPES
from tests.conftest import ApiClient, MultipartForm, rolled_back
from tests.extensions.conftest import BASE_MANIFEST, package_bytes, publish_draft
from tests.factories import MembershipFactory, UserFactory
from tests.orgs.endpoint import API, ORG, Endpoint
from tests.orgs.identity_endpoints import CONSOLE_ENDPOINTS, SECURITY_ENDPOINTS, SSO_ENDPOINTS
from tests.orgs.marketplace_endpoints import AREAS

ROLES = list(Role.values)
KINDS = ["session", "token"]


# --- the table ------------------------------------------------------------------------------------

# Publishing: a fixed key pair, so the upload row can carry a signed package.
TARGET_PRIVATE_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
NEW_KEY = base64.b64encode(bytes(range(1, 33))).decode()
TARGET_MANIFEST = {**BASE_MANIFEST, "id": "acme.target-ext"}
_TARGET_PACKAGE = package_bytes(TARGET_MANIFEST)
UPLOAD = MultipartForm(
    {
        "signature": sign_package(TARGET_PRIVATE_KEY, hashlib.sha256(_TARGET_PACKAGE).hexdigest()),
        "key_id": lambda: (
            SigningKey.objects.filter(name="target").order_by("created_at").values_list("pk", flat=True)[0]
        ),
    },
    {"package": _TARGET_PACKAGE},
)
NEW_EVENT_TYPE = {
    "name": "invoice.paid",
    "description": "An invoice was paid.",
    "schema": {"type": "object", "properties": {"invoice_id": {"type": "string"}}},
    "examples": [{"invoice_id": "inv_1"}],
}
NEXT_ORDER_SCHEMA = {
    "schema": {"type": "object", "required": ["customer_id"], "properties": {"customer_id": {"type": "string"}}},
    "examples": [{"customer_id": "cus_1"}],
}
ENDPOINTS: list[Endpoint] = [
    # the caller
    Endpoint("GET", f"{API}/me"),
    Endpoint("GET", f"{API}/me/sessions", users_only=True),
    Endpoint("DELETE", f"{API}/me/sessions/{{session_id}}", ok=204, users_only=True),
    # organisations
    Endpoint("GET", f"{API}/orgs"),
    Endpoint("POST", f"{API}/orgs", ok=201, body={"name": "Initech"}, users_only=True),
    Endpoint("GET", ORG, ("org.view",)),
    Endpoint("PATCH", ORG, ("org.update",), body={"name": "Acme Renamed"}),
    Endpoint("GET", f"{ORG}/policy", ("org.view",)),
    Endpoint(
        "PUT",
        f"{ORG}/policy",
        ("org.policy.update",),
        body={"require_mfa": False, "max_session_age_minutes": 600, "ip_allowlist": []},
    ),
    # workspaces
    Endpoint("GET", f"{ORG}/workspaces", ("workspace.view",)),
    Endpoint("POST", f"{ORG}/workspaces", ("workspace.create",), ok=201, body={"name": "Research"}),
    Endpoint("GET", f"{ORG}/workspaces/{{workspace_id}}", ("workspace.view",)),
    Endpoint("PATCH", f"{ORG}/workspaces/{{workspace_id}}", ("workspace.view", "workspace.update"), body={"name": "W"}),
    Endpoint("DELETE", f"{ORG}/workspaces/{{workspace_id}}", ("workspace.view", "workspace.delete"), ok=204),
    Endpoint("GET", f"{ORG}/workspaces/{{workspace_id}}/managers", ("workspace.view",)),
    Endpoint(
        "PUT",
        f"{ORG}/workspaces/{{workspace_id}}/managers/{{member_id}}",
        ("workspace.view", "workspace.grant", "member.view"),
        ok=204,
    ),
    Endpoint(
        "DELETE",
        f"{ORG}/workspaces/{{workspace_id}}/managers/{{member_id}}",
        ("workspace.view", "workspace.grant", "member.view"),
        ok=204,
    ),
    # members
    Endpoint("GET", f"{ORG}/members", ("member.view",)),
    Endpoint("GET", f"{ORG}/members/{{member_id}}", ("member.view",)),
    Endpoint("PATCH", f"{ORG}/members/{{member_id}}", ("member.view", "member.update"), body={"role": "billing"}),
    Endpoint("DELETE", f"{ORG}/members/{{member_id}}", ("member.view", "member.remove"), ok=204),
    # invitations
    Endpoint("GET", f"{ORG}/invitations", ("invitation.view",)),
    Endpoint(
        "POST",
        f"{ORG}/invitations",
        ("invitation.create",),
        ok=201,
        body={"email": "newcomer@example.com", "role": "member"},
    ),
    Endpoint("DELETE", f"{ORG}/invitations/{{invitation_id}}", ("invitation.view", "invitation.revoke")),
    # domains
    Endpoint("GET", f"{ORG}/domains", ("domain.view",)),
    Endpoint("POST", f"{ORG}/domains", ("domain.create",), ok=201, body={"name": "newcomer.example"}),
    Endpoint("GET", f"{ORG}/domains/{{domain_id}}", ("domain.view",)),
    Endpoint("DELETE", f"{ORG}/domains/{{domain_id}}", ("domain.view", "domain.delete"), ok=204),
    Endpoint("POST", f"{ORG}/domains/{{domain_id}}/verify", ("domain.view", "domain.verify")),
    # service accounts and tokens
    Endpoint("GET", f"{ORG}/service-accounts", ("service_account.view",)),
    Endpoint(
        "POST",
        f"{ORG}/service-accounts",
        ("service_account.create",),
        ok=201,
        body={"name": "ci", "role": "developer"},
    ),
    Endpoint("GET", f"{ORG}/service-accounts/{{service_account_id}}", ("service_account.view",)),
    Endpoint(
        "POST",
        f"{ORG}/service-accounts/{{service_account_id}}/disable",
        ("service_account.view", "service_account.update"),
    ),
    Endpoint(
        "POST",
        f"{ORG}/service-accounts/{{service_account_id}}/tokens",
        ("service_account.view", "token.create"),
        ok=201,
        body={"name": "ci", "scopes": ["org:read"]},
    ),
    Endpoint("GET", f"{ORG}/tokens", ("token.view",)),
    Endpoint("DELETE", f"{ORG}/tokens/{{token_id}}", ("token.view", "token.revoke")),
    # audit log
    Endpoint("GET", f"{ORG}/audit-events", ("audit.view",)),
    Endpoint("GET", f"{ORG}/audit-events/export", ("audit.view",)),
    # publishing
    Endpoint("GET", f"{ORG}/extensions", ("extension.view",)),
    Endpoint("POST", f"{ORG}/extensions", ("extension.create",), ok=201, body={"name": "brand-new"}),
    Endpoint("GET", f"{ORG}/extensions/{{extension_id}}", ("extension.view",)),
    Endpoint("DELETE", f"{ORG}/extensions/{{extension_id}}", ("extension.view", "extension.delete"), ok=204),
    Endpoint("GET", f"{ORG}/extensions/{{extension_id}}/versions", ("extension.view",)),
    Endpoint("POST", f"{ORG}/extensions/{{extension_id}}/versions", ("extension.view", "version.upload"), ok=201,
             body=UPLOAD),
    Endpoint("GET", f"{ORG}/extensions/{{extension_id}}/versions/{{version_id}}", ("extension.view",)),
    Endpoint("POST", f"{ORG}/extensions/{{extension_id}}/versions/{{version_id}}/submit",
             ("extension.view", "version.submit")),
    Endpoint("GET", f"{ORG}/extensions/{{extension_id}}/invocations", ("extension.view",)),
    Endpoint("GET", f"{ORG}/extensions/{{extension_id}}/invocations/stats", ("extension.view",)),
    Endpoint("GET", f"{ORG}/signing-keys", ("signing_key.view",)),
    Endpoint("POST", f"{ORG}/signing-keys", ("signing_key.create",), ok=201, body={"name": "n", "public_key": NEW_KEY}),
    Endpoint("GET", f"{ORG}/signing-keys/{{key_id}}", ("signing_key.view",)),
    Endpoint("POST", f"{ORG}/signing-keys/{{key_id}}/rotate", ("signing_key.view", "signing_key.rotate"), ok=201,
             body={"name": "n", "public_key": NEW_KEY}),
    Endpoint("POST", f"{ORG}/signing-keys/{{key_id}}/revoke", ("signing_key.view", "signing_key.revoke"),
             body={"reason": "test"}),
    Endpoint("POST", f"{API}/manifests/validate", body=TARGET_MANIFEST),
    # the event catalog (read: everyone; write: platform staff)
    Endpoint("GET", f"{API}/event-types"),
    Endpoint("POST", f"{API}/event-types", ("event_type.manage",), ok=201, staff=True, body=NEW_EVENT_TYPE),
    Endpoint("GET", f"{API}/event-types/{{name}}"),
    Endpoint("PATCH", f"{API}/event-types/{{name}}", ("event_type.manage",), staff=True, body={"description": "D."}),
    Endpoint("GET", f"{API}/event-types/{{name}}/versions"),
    Endpoint("POST", f"{API}/event-types/{{name}}/versions", ("event_type.manage",), ok=201, staff=True,
             body=NEXT_ORDER_SCHEMA),
    Endpoint("GET", f"{API}/event-types/{{name}}/versions/{{version}}"),
    Endpoint("POST", f"{API}/event-types/{{name}}/compatibility", ("event_type.manage",), staff=True,
             body={"schema": {"type": "object"}}),
    # certification and channels (promote and re-run answer 409 here: the target version is a draft)
    Endpoint("POST", f"{ORG}/extensions/{{extension_id}}/versions/{{version_id}}/promote",
             ("extension.view", "version.promote"), ok=409, body={"channel": "stable"}),
    Endpoint("GET", f"{ORG}/extensions/{{extension_id}}/releases", ("extension.view",)),
    Endpoint("GET", f"{ORG}/extensions/{{extension_id}}/versions/{{version_id}}/certification-runs",
             ("extension.view",)),
    Endpoint("GET", f"{ORG}/certification-runs", ("extension.view",)),
    Endpoint("GET", f"{ORG}/certification-runs/{{run_id}}", ("extension.view",)),
    Endpoint("GET", f"{ORG}/sbom-rules", ("sbom_rule.view",)),
    Endpoint("POST", f"{ORG}/sbom-rules", ("sbom_rule.manage",), ok=201, body={"effect": "deny", "name": "leftpad"}),
    Endpoint("DELETE", f"{ORG}/sbom-rules/{{rule_id}}", ("sbom_rule.manage",), ok=204),
    Endpoint("GET", f"{API}/staff/certification-runs", ("certification.view",), staff=True),
    Endpoint("GET", f"{API}/staff/certification-runs/{{run_id}}", ("certification.view",), staff=True),
    Endpoint("POST", f"{API}/staff/certification-runs/{{run_id}}/decision", ("certification.review",), staff=True,
             body={"decision": "approve", "reason": "Looked at it."}),
    Endpoint("POST", f"{API}/staff/extension-versions/{{version_id}}/certification-runs", ("certification.review",),
             ok=409, staff=True, body={"reason": "again"}),
    Endpoint("GET", f"{API}/staff/sbom-rules", ("certification.view",), staff=True),
    Endpoint("POST", f"{API}/staff/sbom-rules", ("certification.review",), ok=201, staff=True,
             body={"effect": "deny", "license": "GPL-3.0-only"}),
    Endpoint("DELETE", f"{API}/staff/sbom-rules/{{platform_rule_id}}", ("certification.review",), ok=204,
             staff=True),
]  # fmt: skip
ENDPOINTS += SSO_ENDPOINTS + SECURITY_ENDPOINTS + CONSOLE_ENDPOINTS
for _area in AREAS:
    ENDPOINTS += _area.ENDPOINTS
ENDPOINT_IDS = [e.id for e in ENDPOINTS]


def expected_outcome(endpoint: Endpoint, role: str, kind: str) -> tuple[int, str | None]:
    """(status, error code) that ``policy.ACTIONS`` and the business rules predict."""
    if endpoint.users_only and kind == "token":
        return 403, "users_only"
    if endpoint.tokens_only and kind == "session":
        return 403, "token_required"
    for action in endpoint.actions:
        if role not in ACTIONS[action][1]:
            return 403, "role"
    return endpoint.ok, None


# --- objects to act on ----------------------------------------------------------------------------
@dataclass
class Targets:
    """One of each organisation-owned object in a tenant, none of them the caller's own."""

    org: Organization
    workspace: Workspace
    member: Membership
    invitation: Invitation
    domain: Domain
    service_account: ServiceAccount
    token: ApiToken
    session: UserSession  # a session of someone in the tenant (the callers use their own)
    extension: Extension
    version: ExtensionVersion
    signing_key: SigningKey
    group: Group
    run: CertificationRun  # of another version of the extension, waiting for staff review
    sbom_rule: SbomRule  # the org's own
    platform_rule: SbomRule
    extra: dict  # ids of the objects each marketplace area made (tests/orgs/marketplace_endpoints.py)

    def ids(self, **overrides) -> dict:
        ids = {
            "org_id": self.org.pk,
            "workspace_id": self.workspace.pk,
            "member_id": self.member.pk,
            "invitation_id": self.invitation.pk,
            "domain_id": self.domain.pk,
            "service_account_id": self.service_account.pk,
            "token_id": self.token.pk,
            "session_id": self.session.pk,
            "extension_id": self.extension.pk,
            "version_id": self.version.pk,
            "key_id": self.signing_key.pk,
            "group_id": self.group.pk,
            "run_id": self.run.pk,
            "rule_id": self.sbom_rule.pk,
            "platform_rule_id": self.platform_rule.pk,
            "name": "customer.created",
            "version": 1,
            **self.extra,
        }
        ids.update(overrides)
        return ids


def make_targets(tenant) -> Targets:
    org = tenant.org
    slug = org.slug
    # a second workspace, so deleting one does not hit the "last workspace" rule
    workspace = Workspace.objects.create(org=org, name="Scratch", slug="scratch")
    member = MembershipFactory(org=org, role=Role.MEMBER, user=UserFactory(email=f"target@{slug}.test"))
    invitation = Invitation.objects.create(
        org=org,
        email=f"invitee@{slug}.test",
        role=Role.MEMBER,
        token_hash=secret_hash(secrets.token_hex(16)),
        expires_at=clock.now() + dt.timedelta(days=7),
    )
    domain = Domain.objects.create(org=org, name=f"{slug}.example", verification_token=secrets.token_hex(16))
    service_account = ServiceAccount.objects.create(org=org, name="deployer", role=Role.DEVELOPER)
    token = ApiToken.objects.create(
        org=org,
        service_account=service_account,
        name="deploy",
        token_hash=secret_hash(secrets.token_hex(16)),
        last_four="abcd",
        scopes=["org:read"],
    )
    session = UserSession.objects.create(user=member.user, session_key=secrets.token_hex(16))
    extension, version, key = make_publishing_targets(org)
    group = Group.objects.create(org=org, display_name="Engineering")
    group.members.add(member)
    run = make_review_run(extension, key)
    sbom_rule = SbomRule.objects.create(org=org, effect="deny", name="target-component")
    platform_rule = SbomRule.objects.create(org=None, effect="deny", name="target-platform-component")
    targets = Targets(
        org, workspace, member, invitation, domain, service_account, token, session, extension, version, key, group,
        run, sbom_rule, platform_rule, {},
    )  # fmt: skip
    for area in AREAS:
        targets.extra.update(area.make_targets(tenant, targets))
    return targets


def make_review_run(extension: Extension, key: SigningKey) -> CertificationRun:
    """A run of version 0.5.0 of ``extension`` (uploaded after 0.9.0 would be refused, so it is
    written directly) that waits for staff review, its version certifying."""
    version = ExtensionVersion.objects.create(
        extension=extension,
        version="0.5.0",
        status="certifying",
        manifest={**TARGET_MANIFEST, "id": extension.key, "version": "0.5.0"},
        scopes=[],
        package_sha256="0" * 64,
        package_size=1,
        signing_key=key,
        signature="x",
    )
    return CertificationRun.objects.create(version=version, org=extension.org, number=1, status="review")


def make_publishing_targets(org: Organization) -> tuple[Extension, ExtensionVersion, SigningKey]:
    """The event catalog, and in ``org`` a signing key (TARGET_PRIVATE_KEY), the extension
    <slug>.target-ext and its draft 0.9.0 (so the table's upload of 1.0.0 is the next version)."""
    sync_catalog()
    return publish_draft(org, TARGET_PRIVATE_KEY, name="target-ext", key_name="target", version="0.9.0")


def make_platform(org: Organization) -> None:
    org.is_platform = True
    org.save(update_fields=["is_platform"])


def session_client(user) -> ApiClient:
    """An ApiClient signed in as ``user`` through the session (no bearer token)."""
    client = ApiClient()
    client.force_login(user)
    return client


def own_session_id(client: Client) -> str:
    return UserSession.objects.get(session_key=client.session.session_key).pk


def caller(kind: str, tenant, role: str, api_for, **token_kwargs) -> tuple[ApiClient, dict]:
    """A client acting as ``role`` in ``tenant``, and id overrides that belong to the caller."""
    if kind == "session":
        client = session_client(tenant.user(role))
        return client, {"session_id": own_session_id(client)}
    return api_for(tenant.org, role=role, **token_kwargs), {}


# --- assertions -----------------------------------------------------------------------------------
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "invalid_request_error",
}


def body_text(res) -> str:
    if getattr(res, "streaming", False):
        return "<streaming body>"
    return res.content.decode(errors="replace")[:2000]


def assert_error(res, status: int, code: str | None = None) -> dict:
    """``res`` is an error with the API's envelope; returns the error object."""
    assert res.status_code == status, f"expected {status}, got {res.status_code}: {body_text(res)}"
    assert res["Content-Type"].startswith("application/json"), res["Content-Type"]
    body = res.json()
    assert list(body) == ["error"], body
    error = body["error"]
    assert {"type", "code", "message", "param", "request_id"} <= set(error), error
    assert error["type"] == _ERROR_TYPES[status], error
    assert error["message"], error
    assert error["request_id"] and error["request_id"] == res["X-Request-Id"], error
    if code is not None:
        assert error["code"] == code, error
    return error


def snapshot(org: Organization) -> dict:
    """Every row an organisation owns (token last-use times aside), to show that nothing changed."""
    token_fields = [f.name for f in ApiToken._meta.concrete_fields if f.name != "last_used_at"]
    key_fields = [f for f in SigningKey._meta.concrete_fields if f.name != "last_used_at"]
    return {
        "org": list(Organization.objects.filter(pk=org.pk).values()),
        "workspaces": list(Workspace.objects.filter(org=org).order_by("pk").values()),
        "members": list(Membership.objects.filter(org=org).order_by("pk").values()),
        "invitations": list(Invitation.objects.filter(org=org).order_by("pk").values()),
        "domains": list(Domain.objects.filter(org=org).order_by("pk").values()),
        "service_accounts": list(ServiceAccount.objects.filter(org=org).order_by("pk").values()),
        "tokens": list(ApiToken.objects.filter(org=org).order_by("pk").values(*token_fields)),
        "audit": list(AuditEvent.objects.filter(org_id=org.pk).order_by("seq").values_list("pk", flat=True)),
        "extensions": list(Extension.objects.filter(org=org).order_by("pk").values()),
        "versions": list(ExtensionVersion.objects.filter(extension__org=org).order_by("pk").values()),
        "signing_keys": list(SigningKey.objects.filter(org=org).order_by("pk").values(*[f.name for f in key_fields])),
        # the platform-wide catalog, which staff rows change
        "event_types": list(EventType.objects.order_by("pk").values()),
        "event_schemas": list(EventSchema.objects.order_by("pk").values_list("pk", flat=True)),
        **{key: rows for area in AREAS for key, rows in area.snapshot(org).items()},
    }


@pytest.fixture
def static_dns(settings):
    """Domain verification looks up TXT records in a fixed table, never on the network."""
    settings.PLAZA_DNS_RESOLVER = "apps.orgs.dns.StaticResolver"


# --- the table is complete ------------------------------------------------------------------------
def test_table_covers_every_operation_in_the_openapi_schema(client):
    # given the published schema
    schema = client.get(f"{API}/openapi.json").json()
    operations = {(method.upper(), path) for path, ops in schema["paths"].items() for method in ops}
    table = {(e.method, e.path) for e in ENDPOINTS}
    # then every operation has exactly one row, and every row is a real operation
    assert len(table) == len(ENDPOINTS), "duplicate rows in ENDPOINTS"
    assert operations - table == set(), "add these operations to ENDPOINTS"
    assert table - operations == set(), "these rows name no operation"


def test_table_exercises_every_policy_action():
    # member.leave is DELETE …/members/{your own id}: see test_every_member_can_leave_but_not_remove_others
    # scim.provision guards /scim/v2/ (SCIM error bodies, not the API envelope): see tests/orgs/scim
    # event.host_ingest is the platform's host token sending into a tenant: see tests/events/test_ingest_api.py
    used = {action for e in ENDPOINTS for action in e.actions} | {"member.leave", "scim.provision", "event.host_ingest"}
    assert set(ACTIONS) - used == set()
    assert used - set(ACTIONS) == set()


def test_every_organisation_endpoint_names_its_actions():
    assert [e.id for e in ENDPOINTS if e.org_scoped and not e.actions] == []


# --- roles ----------------------------------------------------------------------------------------
# Each endpoint's objects are built once; every (kind, role) case runs in a rolled-back savepoint.
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=ENDPOINT_IDS)
def test_role_decides_access_to_each_endpoint(acme, api_for, static_dns, subtests, endpoint):
    # given one of each object to act on in acme
    targets = make_targets(acme)
    if endpoint.staff:
        make_platform(acme.org)
    for kind in KINDS:
        for role in ROLES:
            with subtests.test(kind=kind, role=role), rolled_back():
                # and a caller with ``role`` in acme
                client, own_ids = caller(kind, acme, role, api_for)
                before = snapshot(acme.org)
                status, code = expected_outcome(endpoint, role, kind)
                # when it calls the endpoint
                res = client.call(endpoint.method, endpoint.url(targets.ids(**own_ids)), endpoint.body)
                # then the policy's answer is what came back
                if code is None:
                    assert res.status_code == status, f"{role} ({kind}) expected {status}: {body_text(res)}"
                else:
                    assert_error(res, status, code)
                    assert snapshot(acme.org) == before, "a refused request changed the organisation"


# --- token scopes ---------------------------------------------------------------------------------
def _scopes_needed(endpoint: Endpoint) -> list[str]:
    return sorted({ACTIONS[a][0] for a in endpoint.actions})


SCOPED_ENDPOINTS = [e for e in ENDPOINTS if _scopes_needed(e)]


@pytest.mark.parametrize("endpoint", SCOPED_ENDPOINTS, ids=[e.id for e in SCOPED_ENDPOINTS])
def test_token_without_the_needed_scope_is_refused(acme, api_for, static_dns, subtests, endpoint):
    targets = make_targets(acme)
    if endpoint.staff:
        make_platform(acme.org)
    for scope in _scopes_needed(endpoint):
        with subtests.test(withheld=scope), rolled_back():
            # given an owner token holding every scope except one the endpoint needs (a write scope
            # includes its read scope, so both go when the read scope is the one withheld)
            withheld = {scope, scope.replace(":read", ":write")}
            api = api_for(acme.org, role=Role.OWNER, scopes=[s for s in SCOPES if s not in withheld])
            before = snapshot(acme.org)
            # when it calls the endpoint
            res = api.call(endpoint.method, endpoint.url(targets.ids()), endpoint.body)
            # then it is refused for the scope, and nothing changed
            error = assert_error(res, 403, "missing_scope")
            assert scope in error["message"]
            assert snapshot(acme.org) == before


@pytest.mark.parametrize("path", ["me", "orgs"])
def test_endpoints_outside_an_organisation_need_no_scope(acme, api_for, path):
    api = api_for(acme.org, role=Role.MEMBER, scopes=["audit:read"])
    assert api.call("GET", path).status_code == 200


# --- business rules on top of the roles ------------------------------------------------------------
@pytest.fixture
def second_owner(acme):
    return MembershipFactory(org=acme.org, role=Role.OWNER, user=UserFactory(email="olga@acme.test"))


@pytest.mark.parametrize("kind", KINDS)
def test_an_admin_cannot_promote_anyone_to_owner(acme, api_for, kind):
    targets = make_targets(acme)
    client, _ = caller(kind, acme, Role.ADMIN, api_for)
    res = client.call("PATCH", f"orgs/{acme.org.pk}/members/{targets.member.pk}", {"role": Role.OWNER})
    assert_error(res, 403, "owner_only")
    assert Membership.objects.get(pk=targets.member.pk).role == Role.MEMBER


@pytest.mark.parametrize("kind", KINDS)
def test_an_owner_can_promote_someone_to_owner(acme, api_for, kind):
    targets = make_targets(acme)
    client, _ = caller(kind, acme, Role.OWNER, api_for)
    res = client.call("PATCH", f"orgs/{acme.org.pk}/members/{targets.member.pk}", {"role": Role.OWNER})
    assert res.status_code == 200, res.content
    assert Membership.objects.get(pk=targets.member.pk).role == Role.OWNER


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("method", "body"), [("PATCH", {"role": Role.ADMIN}), ("DELETE", None)])
def test_an_admin_cannot_demote_or_remove_an_owner(acme, api_for, second_owner, kind, method, body):
    client, _ = caller(kind, acme, Role.ADMIN, api_for)
    res = client.call(method, f"orgs/{acme.org.pk}/members/{second_owner.pk}", body)
    assert_error(res, 403, "owner_only")
    assert Membership.objects.get(pk=second_owner.pk).role == Role.OWNER


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("method", "body"), [("PATCH", {"role": Role.ADMIN}), ("DELETE", None)])
def test_the_last_owner_cannot_be_demoted_or_removed(acme, api_for, kind, method, body):
    # given alice is acme's only owner
    alice = Membership.objects.get(org=acme.org, user=acme.owner)
    client, _ = caller(kind, acme, Role.OWNER, api_for)
    # when an owner (alice herself, or an owner token) demotes or removes her
    res = client.call(method, f"orgs/{acme.org.pk}/members/{alice.pk}", body)
    # then the organisation keeps its owner
    assert_error(res, 409, "last_owner")
    assert Membership.objects.get(pk=alice.pk).role == Role.OWNER


@pytest.mark.parametrize(("method", "body", "status"), [("PATCH", {"role": Role.ADMIN}, 200), ("DELETE", None, 204)])
def test_an_owner_may_step_down_while_another_owner_remains(acme, second_owner, method, body, status):
    alice = Membership.objects.get(org=acme.org, user=acme.owner)
    res = session_client(acme.owner).call(method, f"orgs/{acme.org.pk}/members/{alice.pk}", body)
    assert res.status_code == status, res.content
    assert Membership.objects.filter(org=acme.org, role=Role.OWNER).count() == 1


@pytest.mark.parametrize("kind", KINDS)
def test_only_an_owner_can_invite_an_owner(acme, api_for, kind):
    admin, _ = caller(kind, acme, Role.ADMIN, api_for)
    owner, _ = caller(kind, acme, Role.OWNER, api_for)
    path = f"orgs/{acme.org.pk}/invitations"
    assert_error(admin.call("POST", path, {"email": "boss@example.com", "role": Role.OWNER}), 403, "owner_only")
    assert not Invitation.objects.filter(org=acme.org, email="boss@example.com").exists()
    assert owner.call("POST", path, {"email": "boss@example.com", "role": Role.OWNER}).status_code == 201


@pytest.mark.parametrize("kind", KINDS)
def test_only_an_owner_can_create_an_owner_service_account(acme, api_for, kind):
    admin, _ = caller(kind, acme, Role.ADMIN, api_for)
    owner, _ = caller(kind, acme, Role.OWNER, api_for)
    path = f"orgs/{acme.org.pk}/service-accounts"
    assert_error(admin.call("POST", path, {"name": "root", "role": Role.OWNER}), 403, "owner_only")
    assert not ServiceAccount.objects.filter(org=acme.org, name="root").exists()
    assert owner.call("POST", path, {"name": "root", "role": Role.OWNER}).status_code == 201


def test_service_accounts_cannot_create_organisations(acme, api_for):
    res = api_for(acme.org, role=Role.OWNER).call("POST", "orgs", {"name": "Initech"})
    assert_error(res, 403, "users_only")
    assert not Organization.objects.filter(name="Initech").exists()


def test_a_workspace_grant_lets_a_member_update_that_workspace_only(acme):
    # given bob (member) holds the manage permission on one workspace
    targets = make_targets(acme)
    granted = targets.workspace
    other = Workspace.objects.get(org=acme.org, slug="default")
    assign_perm("orgs.manage_workspace", acme.user(Role.MEMBER), granted)
    bob = session_client(acme.user(Role.MEMBER))
    # then he may rename that workspace, but not another, and not delete it
    assert bob.call("PATCH", f"orgs/{acme.org.pk}/workspaces/{granted.pk}", {"name": "Bob's"}).status_code == 200
    assert_error(bob.call("PATCH", f"orgs/{acme.org.pk}/workspaces/{other.pk}", {"name": "x"}), 403, "role")
    assert_error(bob.call("DELETE", f"orgs/{acme.org.pk}/workspaces/{granted.pk}"), 403, "role")


def test_a_person_cannot_end_someone_elses_session(acme):
    # given another member's session in the same organisation
    targets = make_targets(acme)
    client = session_client(acme.owner)
    # when the owner tries to end it
    res = client.call("DELETE", f"me/sessions/{targets.session.pk}")
    # then it does not exist for them
    assert_error(res, 404, "not_found")
    assert UserSession.objects.get(pk=targets.session.pk).ended_at is None


# Issuing a token hands out its service account's role, so it must not outrank the issuer's.
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("issuer", "account_role", "allowed"),
    [
        (Role.DEVELOPER, Role.DEVELOPER, True),
        (Role.DEVELOPER, Role.BILLING, True),
        (Role.DEVELOPER, Role.MEMBER, True),
        (Role.DEVELOPER, Role.ADMIN, False),
        (Role.DEVELOPER, Role.OWNER, False),
        (Role.ADMIN, Role.ADMIN, True),
        (Role.ADMIN, Role.OWNER, False),
        (Role.OWNER, Role.OWNER, True),
    ],
)
def test_a_token_cannot_carry_a_broader_role_than_its_issuer(acme, api_for, kind, issuer, account_role, allowed):
    # given a service account with ``account_role``
    account = ServiceAccount.objects.create(org=acme.org, name="target", role=account_role)
    client, _ = caller(kind, acme, issuer, api_for)
    # when someone with the ``issuer`` role issues it a token
    res = client.call(
        "POST", f"orgs/{acme.org.pk}/service-accounts/{account.pk}/tokens", {"name": "x", "scopes": ["org:read"]}
    )
    # then only an issuer whose role covers the account's gets one
    if allowed:
        assert res.status_code == 201, res.content
    else:
        assert_error(res, 403, "role_escalation")
        assert not ApiToken.objects.filter(service_account=account).exists()


def test_the_portal_refuses_a_token_with_a_broader_role_too(acme):
    account = ServiceAccount.objects.create(org=acme.org, name="root", role=Role.OWNER)
    developer = session_client(acme.user(Role.DEVELOPER))
    res = developer.post(
        f"/orgs/{acme.org.pk}/tokens/",
        {"op": "token_create", "service_account": account.pk, "token_name": "x", "scopes": ["org:read"]},
    )
    assert res.status_code == 403
    assert not ApiToken.objects.filter(service_account=account).exists()


def test_ending_your_current_session_signs_you_out(acme):
    # given alice signed in, whose session the tracking middleware is about to touch
    client = session_client(acme.owner)
    session_id = own_session_id(client)
    # when she ends her current session through the API
    res = client.call("DELETE", f"me/sessions/{session_id}")
    # then it ends cleanly, and the client is no longer signed in
    assert res.status_code == 204, res.content
    assert UserSession.objects.get(pk=session_id).ended_at is not None
    assert_error(client.call("GET", "me"), 401)


@pytest.mark.parametrize("role", [Role.MEMBER, Role.BILLING, Role.DEVELOPER])
def test_every_member_can_leave_but_not_remove_others(acme, login_client, role):
    user = acme.user(role)
    client = login_client(user)
    other = Membership.objects.exclude(user=user).exclude(role=Role.OWNER).filter(org=acme.org).first()
    res = client.delete(f"{API}/orgs/{acme.org.pk}/members/{other.pk}")
    assert_error(res, 403, "role")
    own = Membership.objects.get(org=acme.org, user=user)
    assert client.delete(f"{API}/orgs/{acme.org.pk}/members/{own.pk}").status_code == 204
    assert not Membership.objects.filter(pk=own.pk).exists()


def test_a_write_scope_includes_its_read_scope(acme, api_for):
    api = api_for(acme.org, role=Role.OWNER, scopes=["org:write"])
    assert api.call("GET", f"orgs/{acme.org.pk}").status_code == 200
    assert api.call("POST", f"orgs/{acme.org.pk}/workspaces", {"name": "Via write"}).status_code == 201

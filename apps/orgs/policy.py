"""The policy engine: every view and API operation asks ``authorize(principal, action, resource)``.

A decision combines, in order:
1. **Tenancy** — the principal must belong to the resource's organisation; otherwise the
   resource does not exist for them (:class:`NotFound`, never 403).
2. **Attribute conditions (ABAC)** — the organisation's security policy: IP allowlist, MFA
   required for people, maximum session age.
3. **Token scopes** — a bearer token may only do what its scopes name (``x:write`` includes ``x:read``).
4. **Roles (RBAC)** — the member's (or service account's) role must grant the action; where it
   does not, a django-guardian object permission on the workspace may (see ``OBJECT_GRANTS``).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass, field

from guardian.core import ObjectPermissionChecker

from apps.core import clock
from apps.core.errors import NotFound, PermissionDenied, Unauthenticated
from apps.orgs.models import ApiToken, Membership, Organization, Role, ServiceAccount, Workspace

# action -> (token scope it needs, roles that may do it)
_ALL = frozenset(Role.values)
_ADMINS = frozenset({Role.OWNER, Role.ADMIN})
_BUILDERS = frozenset({Role.OWNER, Role.ADMIN, Role.DEVELOPER})
ACTIONS: dict[str, tuple[str, frozenset[str]]] = {
    "org.view": ("org:read", _ALL),
    "org.update": ("org:write", _ADMINS),
    "org.policy.update": ("org:write", frozenset({Role.OWNER})),
    "workspace.view": ("org:read", _ALL),
    "workspace.create": ("org:write", _BUILDERS),
    "workspace.update": ("org:write", _ADMINS),
    "workspace.delete": ("org:write", _ADMINS),
    "workspace.grant": ("org:write", _ADMINS),
    "member.view": ("members:read", _ALL),
    "member.update": ("members:write", _ADMINS),
    "member.remove": ("members:write", _ADMINS),
    "member.leave": ("members:write", _ALL),
    "invitation.view": ("members:read", _ADMINS),
    "invitation.create": ("members:write", _ADMINS),
    "invitation.revoke": ("members:write", _ADMINS),
    "domain.view": ("domains:read", _BUILDERS),
    "domain.create": ("domains:write", _ADMINS),
    "domain.verify": ("domains:write", _ADMINS),
    "domain.delete": ("domains:write", _ADMINS),
    "service_account.view": ("tokens:read", _BUILDERS),
    "service_account.create": ("tokens:write", _ADMINS),
    "service_account.update": ("tokens:write", _ADMINS),
    "token.view": ("tokens:read", _BUILDERS),
    "token.create": ("tokens:write", _BUILDERS),
    "token.revoke": ("tokens:write", _BUILDERS),
    "audit.view": ("audit:read", _ADMINS),
    # enterprise identity
    "group.view": ("members:read", _ALL),
    "group.manage": ("members:write", _ADMINS),
    "member.sign_out": ("members:write", _ADMINS),
    "member.mfa_reset": ("members:write", _ADMINS),
    "session.view": ("members:read", _ADMINS),
    "sso.view": ("org:read", _ADMINS),
    "sso.manage": ("org:write", _ADMINS),
    "scim.provision": ("scim:write", _ADMINS),
    # Publishing (the organisation as a publisher).
    "extension.view": ("extensions:read", _ALL),
    "extension.create": ("extensions:write", _BUILDERS),
    "extension.delete": ("extensions:write", _ADMINS),
    "version.upload": ("extensions:write", _BUILDERS),
    "version.submit": ("extensions:write", _BUILDERS),
    "signing_key.view": ("signing_keys:read", _BUILDERS),
    "signing_key.create": ("signing_keys:write", _ADMINS),
    "signing_key.rotate": ("signing_keys:write", _ADMINS),
    "signing_key.revoke": ("signing_keys:write", _ADMINS),
    "version.promote": ("extensions:write", _BUILDERS),
    "sbom_rule.view": ("extensions:read", _BUILDERS),
    "sbom_rule.manage": ("extensions:write", _ADMINS),
    # Platform staff: checked against the platform organisation (Organization.is_platform).
    "event_type.manage": ("event_types:write", _BUILDERS),
    "certification.view": ("certification:read", _BUILDERS),
    "certification.review": ("certification:write", _BUILDERS),
    "marketplace.moderate": ("marketplace:moderate", _BUILDERS),
    # Installations (apps.installs), on the customer organisation.
    "installation.view": ("installs:read", _ALL),
    "installation.create": ("installs:write", _ADMINS),
    "installation.update": ("installs:write", _ADMINS),
    "installation.delete": ("installs:write", _ADMINS),
    "install_rule.view": ("installs:read", _ADMINS),
    "install_rule.manage": ("installs:write", _ADMINS),
    "install_request.view": ("installs:read", _ALL),
    "install_request.create": ("installs:read", _ALL),
    "install_request.decide": ("installs:write", _ADMINS),
    # Installations of a publisher's extensions, on the publisher organisation.
    "extension.installations.view": ("extensions:read", _BUILDERS),
    "installation.token": ("extensions:write", _BUILDERS),
    # Listings and reviews (apps.listings): the publisher edits its listing; a customer admin
    # reviews on behalf of the organisation; the publisher replies.
    "listing.view": ("listings:read", _BUILDERS),
    "listing.manage": ("listings:write", _BUILDERS),
    "review.create": ("reviews:write", _ADMINS),
    "review.reply": ("listings:write", _BUILDERS),
    # Events (apps.events): a tenant sends its own events and reads its event log; the host
    # product sends events into any tenant with a token of the platform organisation.
    "event.ingest": ("events:write", _BUILDERS),
    "event.view": ("events:read", _ADMINS),
    "event.host_ingest": ("events:host", _BUILDERS),
    # Webhooks (apps.webhooks): a publisher's endpoints for its extensions, the messages sent to
    # them and replays; a customer's admins see their installations' deliveries.
    "webhook_endpoint.view": ("webhooks:read", _BUILDERS),
    "webhook_endpoint.manage": ("webhooks:write", _BUILDERS),
    "webhook_message.view": ("webhooks:read", _BUILDERS),
    "webhook.replay": ("webhooks:write", _BUILDERS),
    "installation.deliveries.view": ("installs:read", _ADMINS),
    # Embeds (apps.embed) and entitlements (apps.billing), on the customer organisation. A launch
    # lets widgets act for any member (within the installation's grants), hence admins only.
    "embed.launch": ("embed:launch", _ADMINS),
    "embed.settings.view": ("embed:read", _ADMINS),
    "embed.settings.manage": ("embed:write", _ADMINS),
    "entitlement.view": ("billing:read", _ADMINS),
    "entitlement.manage": ("billing:write", _ADMINS),
}

SCOPES: dict[str, str] = {
    "org:read": "Read the organisation, its settings and workspaces",
    "org:write": "Change the organisation's settings and workspaces",
    "members:read": "List members and invitations",
    "members:write": "Invite, change and remove members",
    "domains:read": "List domains and their verification state",
    "domains:write": "Add, verify and remove domains",
    "tokens:read": "List service accounts and tokens",
    "tokens:write": "Create service accounts, issue and revoke tokens",
    "audit:read": "Read and export the audit log",
    "scim:write": "Provision members and groups over SCIM 2.0 (an identity provider's token)",
    "extensions:read": "List the organisation's extensions and their versions",
    "extensions:write": "Create extensions, upload and submit versions",
    "signing_keys:read": "List the organisation's package signing keys",
    "signing_keys:write": "Register, rotate and revoke package signing keys",
    "event_types:write": "Platform staff: register event types and schema versions",
    "certification:read": "Platform staff: read every certification run and the review queue",
    "certification:write": "Platform staff: decide reviews, re-run certification, edit the SBOM policy",
    "marketplace:moderate": "Platform staff: moderate listings and reviews, verify publishers",
    "installs:read": "List installed extensions, their versions, configuration (secrets masked) and rules",
    "installs:write": "Install, configure, update, roll back and uninstall extensions; manage install rules",
    "listings:read": "Read the organisation's marketplace listings, drafts included",
    "listings:write": "Edit listings, submit them for review, reply to reviews",
    "reviews:write": "Rate and review extensions the organisation has installed",
    "events:read": "Read the organisation's event log, payloads included",
    "events:write": "Send events into the organisation (and a publisher's own sandbox tenant)",
    "events:host": "Platform host product: send events into any tenant (platform organisation only)",
    "webhooks:read": "List an extension's webhook endpoints, the messages sent to them and their attempts",
    "webhooks:write": "Manage webhook endpoints and their secrets, send test events, replay and backfill messages",
    "embed:launch": "Start embedded widget sessions (launches) for the organisation's members, from a host product",
    "embed:read": "Read the embed settings: host origins, themes, slot overrides",
    "embed:write": "Change the embed settings: host origins, themes, slot overrides",
    "billing:read": "Read entitlements granted to installations",
    "billing:write": "Grant and revoke entitlements of installations",
}

# What an installation's managed service account (``ServiceAccount.installation_id``, apps.installs)
# may do, whatever its role: the read actions behind the Plaza API scopes an extension may ask for
# (``apps.extensions.scopes.API_SCOPES_FOR_EXTENSIONS``: org:read, members:read, domains:read,
# audit:read). Its role is admin so that audit.view is within reach; without this list its
# members:read token would also read sessions and invitations, which no consent screen offered.
INSTALLATION_ACTIONS = frozenset({"org.view", "workspace.view", "member.view", "domain.view", "audit.view"})

# Object permissions that grant an action on one workspace to someone whose role does not.
OBJECT_GRANTS: dict[str, str] = {"workspace.update": "orgs.manage_workspace"}


@dataclass
class Principal:
    """Who is asking: a signed-in person, or a service account holding a token."""

    kind: str  # "user" | "service_account"
    user: object | None = None
    service_account: ServiceAccount | None = None
    token: object | None = None
    scopes: frozenset[str] | None = None  # None: not restricted by scopes (a browser session)
    ip: str = ""
    mfa_verified: bool = False
    session_started_at: dt.datetime | None = None
    # The SSO provider id (``org-<org id>``) that signed this session in; "" for a password sign-in.
    sso_provider: str = ""
    _roles: dict[str, str | None] = field(default_factory=dict, repr=False)

    @property
    def id(self) -> str:
        return self.user.pk if self.kind == "user" else self.service_account.pk

    @property
    def label(self) -> str:
        return self.user.email if self.kind == "user" else f"service account {self.service_account.name}"

    def role_in(self, org: Organization) -> str | None:
        if org.pk not in self._roles and org.sandbox_of_id and self.kind == "user":
            # A sandbox tenant belongs to its publisher: a person's role there is their role in it.
            self._roles[org.pk] = self.role_in(org.sandbox_of)
        if org.pk not in self._roles:
            if self.kind == "service_account":
                sa = self.service_account
                self._roles[org.pk] = sa.role if sa.org_id == org.pk and sa.disabled_at is None else None
            else:
                self._roles[org.pk] = (
                    Membership.objects.filter(org=org, user=self.user, deactivated_at__isnull=True)
                    .values_list("role", flat=True)
                    .first()
                )
        return self._roles[org.pk]

    def remember_role(self, org_id: str, role: str | None) -> None:
        self._roles[org_id] = role


def _org_of(resource) -> Organization:
    if isinstance(resource, Organization):
        return resource
    return resource.org


def ip_allowed(ip: str, allowlist: list[str]) -> bool:
    if not allowlist:
        return True
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(net, strict=False) for net in allowlist)


def _covers(role: str, other: str) -> bool:
    """Whether ``role`` may do everything ``other`` may."""
    return all(role in roles for _, roles in ACTIONS.values() if other in roles)


# Actions on a service account's credentials: the actor's role must cover the account's role,
# since a token acts with that role (a developer cannot mint, revoke or disable an admin's).
_CREDENTIAL_ACTIONS = {"token.create", "token.revoke", "service_account.update"}


def _credential_role(resource) -> str | None:
    if isinstance(resource, ServiceAccount):
        return resource.role
    if isinstance(resource, ApiToken):
        return resource.service_account.role
    return None


def has_scope(scopes: frozenset[str], scope: str) -> bool:
    """A ``…:write`` scope includes its ``…:read``."""
    return scope in scopes or (scope.endswith(":read") and scope[: -len("read")] + "write" in scopes)


def _object_grant(user, permission: str, obj) -> bool:
    """The user's own or group object permission, without the superuser shortcut of has_perm."""
    checker = ObjectPermissionChecker(user)
    codename = permission.split(".", 1)[1]
    return codename in checker.get_user_perms(obj) or codename in checker.get_group_perms(obj)


def check(principal: Principal, action: str, resource) -> str | None:
    """The reason ``principal`` may not do ``action`` on ``resource``, or None when allowed.

    Raises NotFound when the resource is outside the principal's organisations."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    org = _org_of(resource)
    role = principal.role_in(org)
    if role is None:
        raise NotFound()
    if not ip_allowed(principal.ip, org.ip_allowlist):
        return "ip_not_allowed"
    if principal.kind == "user":
        if org.require_mfa and not principal.mfa_verified:
            return "mfa_required"
        # SSO required: only a session signed in through this org's own connection; owners keep
        # their (audited) break-glass password sign-in.
        if org.sso_required and role != Role.OWNER and principal.sso_provider != f"org-{org.pk}":
            return "sso_required"
        if org.max_session_age_minutes and principal.session_started_at:
            age = clock.now() - principal.session_started_at
            if age > dt.timedelta(minutes=org.max_session_age_minutes):
                return "session_too_old"
    scope, roles = ACTIONS[action]
    if principal.scopes is not None and not has_scope(principal.scopes, scope):
        return "missing_scope"
    if (
        principal.kind == "service_account"
        and principal.service_account.installation_id
        and action not in INSTALLATION_ACTIONS
    ):
        return "role"
    if role in roles:
        if action in _CREDENTIAL_ACTIONS and not _covers(role, _credential_role(resource) or role):
            return "role_escalation"
        return None
    permission = OBJECT_GRANTS.get(action)
    if (
        permission
        and principal.kind == "user"
        and isinstance(resource, Workspace)
        and _object_grant(principal.user, permission, resource)
    ):
        return None
    return "role"


_MESSAGES = {
    "ip_not_allowed": "Your organisation's IP allowlist does not include this address.",
    "mfa_required": "This organisation requires two-factor authentication. Enrol a device to continue.",
    "sso_required": "This organisation requires single sign-on. Sign out, then continue with single sign-on.",
    "missing_scope": "This token lacks the scope '{scope}' that '{action}' needs.",
    "role": "Your role does not allow '{action}'.",
    "role_escalation": "Your role cannot manage credentials of a service account whose role allows more than yours.",
}


def authorize(principal: Principal, action: str, resource) -> None:
    """Allow, or raise NotFound (other tenant), Unauthenticated (session too old) or PermissionDenied."""
    reason = check(principal, action, resource)
    if reason is None:
        return
    if reason == "session_too_old":
        raise Unauthenticated(
            "Your session is older than this organisation allows. Sign in again.", code="session_expired"
        )
    message = _MESSAGES[reason].format(scope=ACTIONS[action][0], action=action)
    raise PermissionDenied(message, code=reason)


def can(principal: Principal, action: str, resource) -> bool:
    try:
        return check(principal, action, resource) is None
    except NotFound:
        return False

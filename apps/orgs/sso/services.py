"""Single sign-on use cases: configure, test, enable and disable an organisation's OpenID Connect
connection; complete an SSO sign-in (just-in-time membership); decide whether a password sign-in
is allowed under the SSO-required policy (owners' audited break-glass)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from django.db import transaction

from apps.audit.services import audit_record
from apps.core import clock, netguard
from apps.core.crypto import decrypt, encrypt
from apps.core.errors import Conflict, ValidationFailed
from apps.orgs.models import Membership, MemberSource, Organization, Role, SsoConnection
from apps.orgs.sso.selectors import PROVIDER_PREFIX, email_domain, verified_domain_names

DISCOVERY_PATH = "/.well-known/openid-configuration"
_FETCH_TIMEOUT = 10.0
_MAX_DOCUMENT_BYTES = 512 * 1024
_SECRET_MAX = 1000


def discovery_url(issuer: str) -> str:
    """Where OpenID Connect Discovery 1.0 puts the issuer's configuration."""
    return issuer.rstrip("/") + DISCOVERY_PATH


# --- configuration --------------------------------------------------------------------------------
_CONTROL = re.compile(r"[\x00-\x1f\x7f]|[\ud800-\udfff]")


def _clean_issuer(issuer: str) -> str:
    issuer = (issuer or "").strip()
    if issuer.endswith(DISCOVERY_PATH):  # a pasted discovery URL: keep the issuer part
        issuer = issuer[: -len(DISCOVERY_PATH)]
    parts = urlsplit(issuer)
    allowed = {"https", "http"} if netguard.private_networks_allowed() else {"https"}
    if parts.scheme not in allowed or not parts.hostname:
        raise ValidationFailed("The issuer must be an https:// URL, such as https://example.okta.com.", param="issuer")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ValidationFailed("The issuer URL may not carry credentials, a query or a fragment.", param="issuer")
    if len(issuer) > 500:
        raise ValidationFailed("The issuer URL is longer than 500 characters.", param="issuer")
    return issuer


def _clean_scopes(scopes: str) -> str:
    words = (scopes or "").replace(",", " ").split()
    if "openid" not in words:
        raise ValidationFailed("The scopes must include openid.", param="scopes")
    if any(not w.isascii() or not w.isprintable() or '"' in w or "\\" in w for w in words):
        raise ValidationFailed("Scopes are space-separated ASCII words.", param="scopes")
    cleaned = " ".join(dict.fromkeys(words))
    if len(cleaned) > 255:
        raise ValidationFailed("The scopes are longer than 255 characters.", param="scopes")
    return cleaned


def sso_connection_save(
    *,
    org: Organization,
    issuer: str,
    client_id: str,
    client_secret: str | None = None,
    name: str = "",
    scopes: str = "openid email profile",
    default_role: str = Role.MEMBER,
) -> SsoConnection:
    """Create or update ``org``'s OpenID Connect connection.

    The client secret is write-only: it is stored encrypted, only its last four characters are
    kept for display, and leaving it out keeps the stored one (it is required on creation).
    Changing the issuer or the client forgets the last test (enable needs a new one) and unlinks
    the accounts that signed in through the old identity provider, whose subject ids mean nothing
    to the new one. Raises ValidationFailed."""
    given = {"name": name, "issuer": issuer, "client_id": client_id, "client_secret": client_secret}
    for param, value in given.items():
        if isinstance(value, str) and _CONTROL.search(value):
            raise ValidationFailed(f"{param} must not contain control characters.", param=param)
    issuer = _clean_issuer(issuer)
    client_id = (client_id or "").strip()
    if not client_id or len(client_id) > 255:
        raise ValidationFailed("Enter the client id the identity provider gave you.", param="client_id")
    secret = (client_secret or "").strip()
    if len(secret) > _SECRET_MAX:
        raise ValidationFailed("The client secret is too long.", param="client_secret")
    scopes = _clean_scopes(scopes)
    if default_role not in Role.values:
        raise ValidationFailed("Unknown role.", param="default_role")
    if default_role == Role.OWNER:
        raise ValidationFailed(
            "People who join through single sign-on cannot become owners automatically.", param="default_role"
        )
    name = (name or "").strip()[:100] or "Single sign-on"
    with transaction.atomic():
        connection = SsoConnection.objects.select_for_update().filter(org=org).first()
        created = connection is None
        if created:
            if not secret:
                raise ValidationFailed("Enter the client secret.", param="client_secret")
            connection = SsoConnection(org=org)
        before = {
            "name": connection.name,
            "issuer": connection.issuer,
            "client_id": connection.client_id,
            "scopes": connection.scopes,
            "default_role": connection.default_role,
        }
        identity_changed = not created and (issuer != connection.issuer or client_id != connection.client_id)
        connection.name = name
        connection.issuer = issuer
        connection.client_id = client_id
        connection.scopes = scopes
        connection.default_role = default_role
        if secret:
            connection.client_secret_encrypted = encrypt(secret)
            connection.client_secret_last_four = secret[-4:]
        if identity_changed:
            connection.last_tested_at = None
            connection.last_test_ok = None
            connection.last_test_detail = ""
        connection.updated_at = clock.now()
        connection.save()
        if identity_changed:
            _unlink_accounts(connection)
        after = {k: getattr(connection, k) for k in before}
        changes = {k: {"before": before[k], "after": after[k]} for k in after if created or before[k] != after[k]}
        if secret:
            changes["client_secret"] = "set" if created else "changed"
        audit_record(
            action="sso.created" if created else "sso.updated",
            org_id=org.pk,
            target=connection,
            target_label=connection.name,
            changes=changes,
        )
    return connection


def _unlink_accounts(connection: SsoConnection) -> int:
    from allauth.socialaccount.models import SocialAccount

    deleted, _ = SocialAccount.objects.filter(provider=connection.provider_id).delete()
    return deleted


def client_secret_of(connection: SsoConnection) -> str:
    """The decrypted client secret ("" when SECRET_KEY changed since it was saved)."""
    return decrypt(connection.client_secret_encrypted) or "" if connection.client_secret_encrypted else ""


# --- test connection --------------------------------------------------------------------------------
@dataclass
class SsoCheck:
    name: str
    ok: bool
    detail: str


@dataclass
class SsoTestResult:
    ok: bool
    checks: list[SsoCheck] = field(default_factory=list)
    tested_at: object = None


def _fetch_json(url: str, what: str) -> tuple[dict | None, str]:
    try:
        answer = netguard.fetch(
            "GET",
            url,
            headers={"Accept": "application/json", "User-Agent": "Plaza-SSO/1"},
            timeout=_FETCH_TIMEOUT,
            max_response_bytes=_MAX_DOCUMENT_BYTES,
        )
    except netguard.BlockedAddress as exc:
        return None, f"Plaza does not connect to {url}: {exc}"
    except ValueError as exc:
        return None, f"{url}: {exc}"
    except netguard.ResponseTooLarge:
        return None, f"The {what} at {url} is larger than {_MAX_DOCUMENT_BYTES // 1024} KiB."
    except netguard.NetworkError as exc:
        return None, f"Could not fetch the {what} at {url}: {exc}"
    if answer.status != 200:
        return None, f"The {what} at {url} answered HTTP {answer.status} {answer.reason}."
    try:
        document = json.loads(answer.body)
    except ValueError:
        return None, f"The {what} at {url} is not JSON."
    if not isinstance(document, dict):
        return None, f"The {what} at {url} is not a JSON object."
    return document, ""


def _run_checks(connection: SsoConnection) -> list[SsoCheck]:
    checks: list[SsoCheck] = []
    url = discovery_url(connection.issuer)
    config, error = _fetch_json(url, "discovery document")
    checks.append(SsoCheck("discovery", config is not None, error or f"Fetched {url}."))
    if config is None:
        return checks
    issuer = config.get("issuer")
    if issuer == connection.issuer:
        checks.append(SsoCheck("issuer", True, f"The document's issuer is {issuer}."))
    else:
        checks.append(
            SsoCheck(
                "issuer",
                False,
                f"The document names issuer {issuer!r}, not {connection.issuer!r}: enter exactly the issuer it names.",
            )
        )
    required = ["authorization_endpoint", "token_endpoint", "jwks_uri", "userinfo_endpoint"]
    missing = [k for k in required if not isinstance(config.get(k), str) or not config.get(k)]
    schemes = {"https", "http"} if netguard.private_networks_allowed() else {"https"}
    insecure = [k for k in required if k not in missing and urlsplit(config[k]).scheme not in schemes]
    if missing or insecure:
        problems = [f"missing {', '.join(missing)}"] if missing else []
        problems += [f"not https: {', '.join(insecure)}"] if insecure else []
        checks.append(SsoCheck("endpoints", False, "Endpoints: " + "; ".join(problems) + "."))
    else:
        checks.append(SsoCheck("endpoints", True, "Authorization, token, userinfo and JWKS endpoints are listed."))
    response_types = config.get("response_types_supported")
    if isinstance(response_types, list) and "code" not in response_types:
        checks.append(SsoCheck("code_flow", False, "The provider does not offer the authorization code flow."))
    else:
        checks.append(SsoCheck("code_flow", True, "The authorization code flow is supported."))
    methods = config.get("code_challenge_methods_supported")
    if methods is None:
        checks.append(
            SsoCheck(
                "pkce",
                True,
                "PKCE methods are not advertised; Plaza always sends S256 (Entra ID, for one, supports it "
                "without listing it).",
            )
        )
    elif isinstance(methods, list) and "S256" in methods:
        checks.append(SsoCheck("pkce", True, "PKCE with S256 is supported."))
    else:
        checks.append(SsoCheck("pkce", False, f"PKCE S256 is not supported (advertised: {methods!r})."))
    jwks_uri = config.get("jwks_uri")
    if isinstance(jwks_uri, str) and jwks_uri and "jwks_uri" not in insecure:
        jwks, error = _fetch_json(jwks_uri, "signing keys (JWKS)")
        keys = jwks.get("keys") if jwks else None
        if not isinstance(keys, list) or not keys:
            checks.append(SsoCheck("jwks", False, error or f"The JWKS at {jwks_uri} lists no keys."))
        elif not all(isinstance(k, dict) and k.get("kty") for k in keys):
            checks.append(SsoCheck("jwks", False, f"The JWKS at {jwks_uri} has keys without a key type (kty)."))
        else:
            checks.append(SsoCheck("jwks", True, f"{len(keys)} signing key(s) at {jwks_uri}."))
    scopes_supported = config.get("scopes_supported")
    if isinstance(scopes_supported, list):
        unknown = [s for s in connection.scopes.split() if s not in scopes_supported]
        if unknown:
            checks.append(SsoCheck("scopes", False, f"The provider does not list these scopes: {', '.join(unknown)}."))
        else:
            checks.append(SsoCheck("scopes", True, "Every requested scope is supported."))
    if not client_secret_of(connection):
        checks.append(SsoCheck("client_secret", False, "The stored client secret cannot be read: enter it again."))
    return checks


def sso_connection_test(*, connection: SsoConnection) -> SsoTestResult:
    """The "test connection" step: fetch the issuer's discovery document and signing keys through
    the SSRF guard and check them (issuer matches exactly, endpoints present, code flow, PKCE S256,
    keys present, scopes supported). The outcome and time are recorded on the connection and audited.
    A failed test never raises: each check carries its own message."""
    checks = _run_checks(connection)
    ok = all(c.ok for c in checks)
    now = clock.now()
    summary = "\n".join(f"{'ok' if c.ok else 'FAILED'} {c.name}: {c.detail}" for c in checks)
    with transaction.atomic():
        connection.last_tested_at = now
        connection.last_test_ok = ok
        connection.last_test_detail = summary[:1000]
        connection.save(update_fields=["last_tested_at", "last_test_ok", "last_test_detail"])
        audit_record(
            action="sso.tested",
            org_id=connection.org_id,
            target=connection,
            target_label=connection.name,
            changes={"ok": ok, "failed": [c.name for c in checks if not c.ok]},
        )
    return SsoTestResult(ok=ok, checks=checks, tested_at=now)


def checks_of(connection: SsoConnection) -> list[SsoCheck]:
    """The checks of the last recorded test, parsed back from ``last_test_detail``."""
    checks = []
    for line in connection.last_test_detail.splitlines():
        status, _, rest = line.partition(" ")
        name, _, detail = rest.partition(": ")
        if name:
            checks.append(SsoCheck(name, status == "ok", detail))
    return checks


# --- enable / disable / delete ----------------------------------------------------------------------
def sso_connection_enable(*, connection: SsoConnection) -> SsoConnection:
    """Start routing the organisation's verified domains to the identity provider. Needs a passed
    test since the issuer or client last changed (Conflict ``sso_test_required``)."""
    if connection.last_test_ok is not True:
        raise Conflict(
            "Test the connection successfully before enabling it.", code="sso_test_required", param="enabled"
        )
    return _set_enabled(connection, True)


def sso_connection_disable(*, connection: SsoConnection) -> SsoConnection:
    """Stop routing sign-ins to the identity provider. Refused (Conflict ``sso_required``) while the
    organisation requires single sign-on: its members could no longer sign in."""
    _refuse_while_required(connection.org, "disable")
    return _set_enabled(connection, False)


def _set_enabled(connection: SsoConnection, enabled: bool) -> SsoConnection:
    with transaction.atomic():
        if connection.enabled != enabled:
            connection.enabled = enabled
            connection.updated_at = clock.now()
            connection.save(update_fields=["enabled", "updated_at"])
            audit_record(
                action="sso.enabled" if enabled else "sso.disabled",
                org_id=connection.org_id,
                target=connection,
                target_label=connection.name,
            )
    return connection


def _refuse_while_required(org: Organization, verb: str) -> None:
    org.refresh_from_db(fields=["sso_required"])
    if org.sso_required:
        raise Conflict(
            f"This organisation requires single sign-on: turn that policy off before you {verb} the connection.",
            code="sso_required",
        )


def sso_connection_delete(*, connection: SsoConnection) -> None:
    """Remove the connection and unlink the accounts that signed in through it. Refused (Conflict
    ``sso_required``) while the organisation requires single sign-on."""
    _refuse_while_required(connection.org, "delete")
    with transaction.atomic():
        audit_record(
            action="sso.deleted",
            org_id=connection.org_id,
            target=connection,
            target_label=connection.name,
            changes={"issuer": connection.issuer},
        )
        _unlink_accounts(connection)
        connection.delete()


def sso_can_require(org: Organization) -> bool:
    """Whether ``org`` may turn on "SSO required": it has an enabled connection."""
    return SsoConnection.objects.filter(org=org, enabled=True).exists()


# --- sign-in ------------------------------------------------------------------------------------------
def sso_email_allowed(connection: SsoConnection, email: str, verified: bool) -> str | None:
    """Why an identity the provider asserted may not sign in through ``connection``, or None.

    A provider is trusted only for addresses it asserts as verified in a domain its organisation
    verified: otherwise any IdP admin could sign in as anyone's address."""
    if not email:
        return "The identity provider did not send an e-mail address (request the email scope)."
    if not verified:
        return f"The identity provider did not assert that {email} is verified."
    domain = email_domain(email)
    if domain not in verified_domain_names(connection.org):
        return f"{email} is not in a domain that {connection.org.name} has verified for single sign-on."
    return None


def claim_is_true(value) -> bool:
    """Whether an OpenID Connect boolean claim (``email_verified``) says yes. allauth passes the raw
    claim through and some providers (AWS Cognito, for one) send it as a string, where
    ``bool("false")`` would be True: only the boolean True or the string "true" count."""
    if isinstance(value, bool):
        return value
    return isinstance(value, str) and value.strip().lower() == "true"


def sso_account_refusal(connection: SsoConnection, user, email: str) -> str | None:
    """Why the existing Plaza account ``user`` (found by its link to the provider's subject id, or
    by its verified address) may not be signed in by this assertion of ``email``, or None.

    A link is only as good as what was true when it was made: the account's e-mail must still be
    the asserted address and in the organisation's verified domains, so that a subject id the IdP
    reassigns (or a stale link of a former member) cannot sign in as somebody else's account. A
    deactivated membership is the organisation's decision (SCIM or an admin): single sign-on does
    not bring the person back."""
    account_email = (getattr(user, "email", "") or "").strip()
    if not account_email or account_email.lower() != (email or "").strip().lower():
        return (
            f"This identity is linked to a Plaza account whose e-mail address is no longer {email}: "
            "ask your administrator to check your account."
        )
    if email_domain(account_email) not in verified_domain_names(connection.org):
        return f"{account_email} is not in a domain that {connection.org.name} has verified for single sign-on."
    if Membership.objects.filter(org=connection.org, user=user, deactivated_at__isnull=False).exists():
        return f"Your membership of {connection.org.name} is deactivated: ask your administrator to reactivate it."
    return None


def sso_unlink_membership(*, org_id: str, user_id: str) -> int:
    """Forget the links between ``user_id``'s account and ``org_id``'s identity provider (their
    membership was removed or deactivated). Returns the number of links removed."""
    from allauth.socialaccount.models import SocialAccount

    if not org_id or not user_id:
        return 0
    deleted, _ = SocialAccount.objects.filter(user_id=user_id, provider=f"{PROVIDER_PREFIX}{org_id}").delete()
    return deleted


def sso_unlink_user(*, user_id: str) -> int:
    """Forget every organisation identity-provider link of ``user_id``'s account (its e-mail address
    changed: the links were made for the old one). The next SSO sign-in links again by the
    verified address. Returns the number of links removed."""
    from allauth.socialaccount.models import SocialAccount

    if not user_id:
        return 0
    deleted, _ = SocialAccount.objects.filter(user_id=user_id, provider__startswith=PROVIDER_PREFIX).delete()
    return deleted


def sso_login_complete(*, connection: SsoConnection, user, email: str, email_verified: bool) -> Membership | None:
    """Record an SSO sign-in and give the person just-in-time membership: when they have none in the
    organisation, one is created with the connection's default role (source ``sso``). Returns the
    membership created, or None (already a member, deactivated, or the e-mail does not qualify)."""
    org = connection.org
    reason = sso_email_allowed(connection, email, email_verified) or sso_account_refusal(connection, user, email)
    with transaction.atomic():
        created = None
        if reason is None and not Membership.objects.filter(org=org, user=user).exists():
            created = Membership.objects.create(
                org=org, user=user, role=connection.default_role, source=MemberSource.SSO
            )
            audit_record(
                action="member.jit_created",
                org_id=org.pk,
                target=created,
                target_label=user.email,
                changes={"role": created.role, "source": MemberSource.SSO, "connection": connection.pk},
            )
        audit_record(
            action="sso.login",
            org_id=org.pk,
            target=user,
            target_label=user.email,
            changes={"connection": connection.pk, "email": email, "jit": created is not None},
        )
    return created


@dataclass
class PasswordLoginDecision:
    refused_by: list[Organization]  # SSO-required organisations where the person is not an owner
    break_glass: list[Organization]  # SSO-required organisations where they are an owner


def sso_password_login_check(*, user) -> PasswordLoginDecision:
    """Whether ``user`` may sign in with a password: not while they are an active non-owner member
    of an organisation that requires single sign-on; owners may (break-glass)."""
    refused, break_glass = [], []
    memberships = Membership.objects.select_related("org").filter(
        user=user, deactivated_at__isnull=True, org__sso_required=True
    )
    for membership in memberships:
        (break_glass if membership.role == Role.OWNER else refused).append(membership.org)
    return PasswordLoginDecision(refused_by=refused, break_glass=break_glass)


def sso_password_login_refused(*, user, orgs: list[Organization]) -> None:
    """Audit a password sign-in refused under the SSO-required policy (in each organisation's log)."""
    for org in orgs:
        audit_record(action="sso.password_login_refused", org_id=org.pk, target=user, target_label=user.email)


def sso_break_glass_login(*, user, orgs: list[Organization]) -> None:
    """Audit an owner's password sign-in to organisations that require single sign-on."""
    for org in orgs:
        audit_record(
            action="sso.break_glass_login",
            org_id=org.pk,
            target=user,
            target_label=user.email,
            changes={"method": "password"},
        )

"""Delegated tokens: short-lived ES256 JWTs a widget receives on its port and its extension's
backend verifies against Plaza's JWKS (``/.well-known/jwks.json``), with no shared secret.

Claims: ``iss`` (PLAZA_BASE_URL), ``aud`` (the extension id), ``sub`` (a pairwise user id: the
same person has unrelated ids at two extensions), ``scope`` (space-separated: the installation's
granted Plaza API scopes ∩ what the person's role allows), ``inst``, ``org``, ``iat``, ``nbf``,
``exp`` (PLAZA_EMBED_TOKEN_SECONDS, 60-300 s), ``jti``.

Plaza's API accepts them (``PLAZA_BEARER_AUTHENTICATORS`` → ``authenticate_bearer``) as the
installation's managed service account, limited to the scopes they carry, and only while the
installation is active and the person still a member.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

import jwt
from django.conf import settings

from apps.core import clock, context
from apps.core.errors import NotFound, PermissionDenied
from apps.core.http import client_ip
from apps.embed import keys
from apps.embed.models import Launch
from apps.extensions.scopes import API_SCOPES_FOR_EXTENSIONS
from apps.installs.models import Installation, InstallationStatus
from apps.installs.selectors import api_scopes, effective_scopes
from apps.orgs.models import Membership, ServiceAccount
from apps.orgs.policy import ACTIONS, INSTALLATION_ACTIONS, Principal, check

MAX_TOKEN_LENGTH = 4096


def pairwise_subject(user_id: str, extension_id: str) -> str:
    """A stable id of the person for one extension, unlinkable across extensions."""
    key = hashlib.sha256(b"plaza pairwise subject v1" + settings.SECRET_KEY.encode()).digest()
    return "pu_" + hmac.new(key, f"{user_id}\x00{extension_id}".encode(), hashlib.sha256).hexdigest()[:40]


def user_api_scopes(user, org, *, ip: str = "") -> set[str]:
    """The extension-reachable Plaza API scopes whose read actions ``user``'s role allows in ``org``.

    The policy engine decides (tenancy, IP allowlist, role). Person-level sign-in conditions (MFA,
    SSO, session age) are the host product's: its backend, holding ``embed:launch``, vouched for
    this person's session when it created the launch."""
    person = Principal(kind="user", user=user, ip=ip, mfa_verified=True, sso_provider=f"org-{org.pk}")
    held = set()
    for action in INSTALLATION_ACTIONS:
        scope = ACTIONS[action][0]
        if scope in API_SCOPES_FOR_EXTENSIONS and scope not in held:
            try:
                if check(person, action, org) is None:
                    held.add(scope)
            except NotFound:  # no longer a member
                return set()
    return held


def role_api_scopes(role: str) -> frozenset[str]:
    """The extension-reachable API scopes whose read actions ``role`` allows (no query: used on
    every request a delegated token makes, so a demoted person's live tokens narrow at once)."""
    return frozenset(
        ACTIONS[action][0]
        for action in INSTALLATION_ACTIONS
        if ACTIONS[action][0] in API_SCOPES_FOR_EXTENSIONS and role in ACTIONS[action][1]
    )


def token_scopes(installation: Installation, user, *, ip: str = "") -> list[str]:
    granted = set(api_scopes(effective_scopes(installation)))
    return sorted(granted & user_api_scopes(user, installation.org, ip=ip))


def delegated_token_issue(*, launch: Launch, installation: Installation, ip: str = "") -> dict:
    """A token for ``installation``'s widget acting for the launch's person. Not audited (one every
    couple of minutes per open widget); the launch that allowed it is."""
    if not Membership.objects.filter(
        org_id=installation.org_id, user_id=launch.user_id, deactivated_at__isnull=True
    ).exists():
        raise PermissionDenied("The launch's person is no longer a member of the organisation.", code="not_a_member")
    now = int(clock.now().timestamp())
    lifetime = min(300, max(60, int(settings.PLAZA_EMBED_TOKEN_SECONDS)))
    scopes = token_scopes(installation, launch.user, ip=ip)
    claims = {
        "iss": settings.PLAZA_BASE_URL,
        "aud": installation.extension_id,
        "sub": pairwise_subject(launch.user_id, installation.extension_id),
        "scope": " ".join(scopes),
        "inst": installation.pk,
        "org": installation.org_id,
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
        "jti": "dt_" + secrets.token_urlsafe(18),
    }
    # The launch's person, for Plaza's own API only (extensions see the pairwise ``sub``): sealed
    # into an opaque claim so the token does not hand out Plaza's user id.
    claims["plz"] = _seal_user(launch.user_id, claims["jti"])
    token = jwt.encode(claims, keys.private_key(), algorithm=keys.ALGORITHM, headers={"kid": keys.current_kid()})
    return {
        "token": token,
        "expires_at": dt.datetime.fromtimestamp(claims["exp"], dt.UTC),
        "expires_in": lifetime,
        "scope": claims["scope"],
    }


def _seal_key() -> bytes:
    return hashlib.sha256(b"plaza delegated token user v1" + settings.SECRET_KEY.encode()).digest()


def _seal_user(user_id: str, jti: str) -> str:
    """The user id, encrypted and bound to the token (AES-GCM with the jti as associated data)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = secrets.token_bytes(12)
    sealed = AESGCM(_seal_key()).encrypt(nonce, user_id.encode(), jti.encode())
    return keys._b64url(nonce + sealed)


def _open_user(value, jti: str) -> str | None:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    raw = keys._b64decode(value) if isinstance(value, str) and len(value) < 200 else None
    if raw is None or len(raw) < 29:
        return None
    try:
        return AESGCM(_seal_key()).decrypt(raw[:12], raw[12:], jti.encode()).decode()
    except (InvalidTag, ValueError, UnicodeDecodeError):
        return None


def verify(token: str, *, audience: str | None = None) -> dict | None:
    """The claims of a valid, unexpired delegated token signed by a published key, or None.
    With ``audience``, the token must be for that extension."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
        return None
    try:
        header = jwt.get_unverified_header(token)
        key = keys.public_keys_by_kid().get(header.get("kid")) if header.get("alg") == keys.ALGORITHM else None
        if key is None:
            return None
        options = {"require": ["iss", "aud", "sub", "exp", "iat", "jti"], "verify_aud": audience is not None}
        claims = jwt.decode(
            token,
            key,
            algorithms=[keys.ALGORITHM],
            issuer=settings.PLAZA_BASE_URL,
            audience=audience,
            options=options,
        )
    except (jwt.PyJWTError, ValueError, TypeError):
        return None
    if not all(isinstance(claims.get(k), str) for k in ("aud", "inst", "org", "jti", "scope")):
        return None
    return claims


@dataclass(frozen=True)
class DelegatedToken:
    """Stands where an ApiToken would (``Principal.token``): the jti and the expiry."""

    pk: str
    expires_at: dt.datetime
    installation_id: str
    user_id: str


def authenticate_bearer(request, raw: str) -> Principal | None:
    """``PLAZA_BEARER_AUTHENTICATORS`` entry: a delegated token as the installation's managed
    service account, with the token's scopes (never more than that account's installation grants)."""
    claims = verify(raw)
    if claims is None:
        return None
    user_id = _open_user(claims.get("plz"), claims["jti"])
    installation = (
        Installation.objects.filter(pk=claims["inst"], org_id=claims["org"], status=InstallationStatus.ACTIVE)
        .select_related("version")
        .first()
    )
    if user_id is None or installation is None or installation.extension_id != claims["aud"]:
        return None
    role = (
        Membership.objects.filter(org_id=installation.org_id, user_id=user_id, deactivated_at__isnull=True)
        .values_list("role", flat=True)
        .first()
    )
    if role is None:
        return None
    account = (
        ServiceAccount.objects.select_related("org")
        .filter(org_id=installation.org_id, installation_id=installation.pk, disabled_at__isnull=True)
        .order_by("pk")
        .first()
    )
    if account is None:
        return None
    # Never more than the installation grants now (a grant narrowed since the token was minted), nor
    # more than the person's role allows now (a demotion since then).
    scopes = (
        frozenset(claims["scope"].split())
        & frozenset(api_scopes(effective_scopes(installation)))
        & role_api_scopes(role)
    )
    token = DelegatedToken(
        pk=claims["jti"],
        expires_at=dt.datetime.fromtimestamp(claims["exp"], dt.UTC),
        installation_id=installation.pk,
        user_id=user_id,
    )
    principal = Principal(
        kind="service_account", service_account=account, token=token, scopes=scopes, ip=client_ip(request)
    )
    request.principal = principal
    context.update(
        actor_type="service_account",
        actor_id=account.pk,
        actor_label=f"{account.name} (delegated token {token.pk}, for {user_id})",
    )
    return principal

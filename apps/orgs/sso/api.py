"""Single sign-on per organisation: OpenID Connect through django-allauth, routing by verified
e-mail domain, just-in-time membership, and the SSO-required policy.

Every operation resolves the connection with ``get_sso_connection_for_principal`` (or the
organisation with ``get_org_for_principal``): tenant scoping and authorisation happen there."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse
from ninja import Router, Status

from apps.orgs.models import SsoConnection
from apps.orgs.selectors import get_org_for_principal
from apps.orgs.sso import services
from apps.orgs.sso.schemas import SsoConnectionIn, SsoConnectionOut, SsoTestOut
from apps.orgs.sso.selectors import get_sso_connection_for_principal, verified_domain_names

router = Router(tags=["organisations"])


def redirect_uri(connection: SsoConnection) -> str:
    """The callback URI the admin registers at the identity provider."""
    path = reverse("openid_connect_callback", kwargs={"provider_id": connection.provider_id})
    return f"{settings.PLAZA_BASE_URL}{path}"


def connection_out(connection: SsoConnection) -> dict:
    return {
        "id": connection.pk,
        "name": connection.name,
        "issuer": connection.issuer,
        "client_id": connection.client_id,
        "client_secret_last_four": connection.client_secret_last_four,
        "scopes": connection.scopes,
        "default_role": connection.default_role,
        "enabled": connection.enabled,
        "provider_id": connection.provider_id,
        "redirect_uri": redirect_uri(connection),
        "routed_domains": verified_domain_names(connection.org),
        "last_tested_at": connection.last_tested_at,
        "last_test_ok": connection.last_test_ok,
        "created_at": connection.created_at,
        "updated_at": connection.updated_at,
    }


@router.get("/orgs/{org_id}/sso", response=SsoConnectionOut, summary="Get the single sign-on connection")
def get_sso(request: HttpRequest, org_id: str):
    """The organisation's OpenID Connect connection (404 ``sso_not_configured`` when it has none).
    The client secret is never returned, only its last four characters."""
    return connection_out(get_sso_connection_for_principal(request.auth, org_id, "sso.view"))


@router.put("/orgs/{org_id}/sso", response=SsoConnectionOut, summary="Create or update the single sign-on connection")
def put_sso(request: HttpRequest, org_id: str, payload: SsoConnectionIn):
    """Create or update the connection. The client secret is write-only (required on creation).
    Changing the issuer or client id needs a new test before the connection can be enabled."""
    org = get_org_for_principal(request.auth, org_id, "sso.manage")
    connection = services.sso_connection_save(
        org=org,
        name=payload.name,
        issuer=payload.issuer,
        client_id=payload.client_id,
        client_secret=payload.client_secret,
        scopes=payload.scopes,
        default_role=payload.default_role,
    )
    if payload.enabled is True:
        services.sso_connection_enable(connection=connection)
    elif payload.enabled is False:
        services.sso_connection_disable(connection=connection)
    return connection_out(connection)


@router.post("/orgs/{org_id}/sso/test", response=SsoTestOut, summary="Test the single sign-on connection")
def test_sso(request: HttpRequest, org_id: str):
    """Fetch and check the provider's discovery document and signing keys (through Plaza's SSRF
    guard). Always 200 when the connection exists: ``ok`` and each check say what passed."""
    connection = get_sso_connection_for_principal(request.auth, org_id, "sso.manage")
    result = services.sso_connection_test(connection=connection)
    return {"ok": result.ok, "tested_at": result.tested_at, "checks": [vars(c) for c in result.checks]}


@router.delete("/orgs/{org_id}/sso", response={204: None}, summary="Delete the single sign-on connection")
def delete_sso(request: HttpRequest, org_id: str):
    """Remove the connection (409 ``sso_required`` while the organisation requires single sign-on)."""
    connection = get_sso_connection_for_principal(request.auth, org_id, "sso.manage")
    services.sso_connection_delete(connection=connection)
    return Status(204, None)

"""Authorization-table rows of the enterprise identity endpoints (issue #3), one list per area so
that each can grow on its own. The ids available to paths are those of ``Targets.ids`` in
tests/orgs/test_authorization.py (``group_id`` and ``member_id`` among them)."""

from __future__ import annotations

from tests.orgs.endpoint import API, ORG, Endpoint  # noqa: F401

# The target organisation has no SSO connection: reading, testing or deleting it answers 404
# sso_not_configured to whoever may (and the usual 403 to whoever may not); PUT creates one.
SSO_ENDPOINTS: list[Endpoint] = [
    Endpoint("GET", f"{ORG}/sso", ("sso.view",), ok=404),
    Endpoint(
        "PUT",
        f"{ORG}/sso",
        ("sso.manage",),
        body={"issuer": "https://idp.example.com", "client_id": "plaza", "client_secret": "s3cret-value"},
    ),
    Endpoint("POST", f"{ORG}/sso/test", ("sso.manage",), ok=404),
    Endpoint("DELETE", f"{ORG}/sso", ("sso.manage",), ok=404),
]
SECURITY_ENDPOINTS: list[Endpoint] = [
    Endpoint("DELETE", f"{API}/me/sessions", ok=204, users_only=True),
    Endpoint("GET", f"{ORG}/sessions", ("session.view",)),
    Endpoint("POST", f"{ORG}/members/{{member_id}}/sign-out", ("member.view", "member.sign_out")),
    Endpoint("POST", f"{ORG}/members/{{member_id}}/mfa-reset", ("member.view", "member.mfa_reset")),
]
CONSOLE_ENDPOINTS: list[Endpoint] = [
    Endpoint("GET", f"{ORG}/groups", ("group.view",)),
    Endpoint("POST", f"{ORG}/groups", ("group.manage",), ok=201, body={"display_name": "Design", "role": "developer"}),
    Endpoint("GET", f"{ORG}/groups/{{group_id}}", ("group.view",)),
    Endpoint("PATCH", f"{ORG}/groups/{{group_id}}", ("group.view", "group.manage"), body={"display_name": "Platform"}),
    Endpoint("DELETE", f"{ORG}/groups/{{group_id}}", ("group.view", "group.manage"), ok=204),
    Endpoint(
        "PUT",
        f"{ORG}/groups/{{group_id}}/members/{{member_id}}",
        ("group.view", "group.manage", "member.view"),
        ok=204,
    ),
    Endpoint(
        "DELETE",
        f"{ORG}/groups/{{group_id}}/members/{{member_id}}",
        ("group.view", "group.manage", "member.view"),
        ok=204,
    ),
]

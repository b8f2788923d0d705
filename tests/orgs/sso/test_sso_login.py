"""End to end: sign in through a real OpenID Connect provider (panva/oidc-provider on loopback),
driven over HTTP like a browser: Plaza's e-mail-first page, the provider's own login and consent
forms, back to allauth's callback. Nothing of allauth is mocked."""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests
from allauth.socialaccount.models import SocialAccount

from apps.accounts.models import User
from apps.audit.models import AuditEvent
from apps.orgs.models import Membership, MemberSource, Role

pytestmark = pytest.mark.django_db(transaction=True)

_FORM = re.compile(r'<form[^>]*action="([^"]+)"[^>]*method="post"', re.I)


def _csrf(session: requests.Session, url: str) -> str:
    session.get(url).raise_for_status()
    return session.cookies["csrftoken"]


def sso_sign_in(base_url: str, email: str, idp_login: str | None = None) -> tuple[requests.Session, requests.Response]:
    """Type ``email`` on Plaza's single sign-on page, sign in at the provider as ``idp_login``
    (default: the same address) and consent; returns the session and the last response."""
    session = requests.Session()
    session.trust_env = False
    token = _csrf(session, f"{base_url}/accounts/sso/")
    res = session.post(f"{base_url}/accounts/sso/", data={"email": email, "csrfmiddlewaretoken": token})
    assert res.status_code == 200 and "/interaction/" in res.url, (res.status_code, res.url, res.text[:500])
    authorize = next(r for r in res.history if "/auth?" in r.url or "/auth?" in r.headers.get("location", ""))
    query = parse_qs(urlsplit(authorize.headers["location"]).query)
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"][0]
    assert query["login_hint"] == [email]
    # the provider's login form, then its consent form
    action = unescape(_FORM.search(res.text).group(1))
    res = session.post(urljoin(res.url, action), data={"prompt": "login", "login": idp_login or email, "password": "x"})
    assert res.status_code == 200, res.text[:500]
    if "/interaction/" in res.url:
        action = unescape(_FORM.search(res.text).group(1))
        res = session.post(urljoin(res.url, action), data={"prompt": "consent"})
    return session, res


def test_sso_sign_in_through_a_real_provider_lands_in_the_org_with_the_jit_role(live_server, oidc_provider, sso_org):
    # given acme routes acme.test to its IdP, default role developer, and nobody has newhire's address
    assert not User.objects.filter(email="newhire@acme.test").exists()
    # when newhire signs in through single sign-on
    session, res = sso_sign_in(live_server.url, "newhire@acme.test")
    # then they are signed in to Plaza ...
    assert res.status_code == 200 and res.url.startswith(live_server.url), (res.url, res.text[:300])
    me = session.get(f"{live_server.url}/api/v1/me")
    assert me.status_code == 200 and me.json()["email"] == "newhire@acme.test"
    # ... with an account whose address the IdP verified, and a membership of acme from SSO
    user = User.objects.get(email="newhire@acme.test")
    assert user.emailaddress_set.get().verified
    membership = Membership.objects.get(org=sso_org.org, user=user)
    assert (membership.role, membership.source) == (Role.DEVELOPER, MemberSource.SSO)
    assert SocialAccount.objects.get(user=user).provider == f"org-{sso_org.org.pk}"
    # and can use the organisation
    org = session.get(f"{live_server.url}/api/v1/orgs/{sso_org.org.pk}")
    assert org.status_code == 200, org.text
    actions = set(AuditEvent.objects.filter(org_id=sso_org.org.pk).values_list("action", flat=True))
    assert {"sso.login", "member.jit_created"} <= actions


def test_an_existing_account_is_linked_by_its_verified_address_without_a_new_membership(
    live_server, oidc_provider, sso_org
):
    # given bob, a member with a verified address in acme.test, and acme requiring SSO
    bob = sso_org.user(Role.MEMBER)
    sso_org.org.sso_required = True
    sso_org.org.save(update_fields=["sso_required"])
    # when bob signs in through single sign-on
    session, res = sso_sign_in(live_server.url, bob.email)
    # then it is his account, linked to the IdP, his role unchanged, and the org is open to him
    assert session.get(f"{live_server.url}/api/v1/me").json()["email"] == bob.email
    assert SocialAccount.objects.get(provider=f"org-{sso_org.org.pk}").user == bob
    membership = Membership.objects.get(org=sso_org.org, user=bob)
    assert (membership.role, membership.source) == (Role.MEMBER, MemberSource.MANUAL)
    assert session.get(f"{live_server.url}/api/v1/orgs/{sso_org.org.pk}").status_code == 200
    assert not AuditEvent.objects.filter(org_id=sso_org.org.pk, action="member.jit_created").exists()


def test_an_identity_outside_the_orgs_verified_domains_gets_no_account_or_membership(
    live_server, oidc_provider, sso_org
):
    # when the IdP signs someone in whose address is in another domain
    session, res = sso_sign_in(live_server.url, "newhire@acme.test", idp_login="mallory@evil.test")
    # then Plaza refuses, says why, and creates nothing
    assert res.status_code == 403
    assert "not in a domain that Acme has verified" in res.text
    assert not User.objects.filter(email="mallory@evil.test").exists()
    assert Membership.objects.filter(org=sso_org.org).count() == len(Role.values)
    assert session.get(f"{live_server.url}/api/v1/me").status_code == 401
    assert AuditEvent.objects.filter(org_id=sso_org.org.pk, action="sso.login_refused").exists()


def test_an_address_the_provider_does_not_assert_as_verified_is_refused(live_server, oidc_provider, sso_org):
    session, res = sso_sign_in(live_server.url, "newhire@acme.test", idp_login="unverified+newhire@acme.test")
    assert res.status_code == 403 and "did not assert that newhire@acme.test is verified" in res.text
    assert not User.objects.filter(email="newhire@acme.test").exists()

"""SSO required: members cannot sign in with a password (sent to single sign-on), owners can
(break-glass, audited and flagged), and a session not signed in through the org's SSO gets no
access to it; plus the e-mail-first page, the console page and the SSRF guard on allauth's HTTP."""

from __future__ import annotations

import pytest
import requests
from django.test import Client
from django.urls import reverse

from apps.audit.models import AuditEvent
from apps.core import clock
from apps.orgs.models import Domain, Role, SsoConnection
from apps.orgs.sso.adapter import SESSION_BREAK_GLASS
from apps.orgs.sso.transport import guarded_session
from tests.factories import PASSWORD
from tests.orgs.test_authorization import assert_error


@pytest.fixture
def required(acme):
    """acme: acme.test verified, an enabled connection, and SSO required."""
    Domain.objects.create(org=acme.org, name="acme.test", verification_token="t", verified_at=clock.now())
    SsoConnection.objects.create(
        org=acme.org, issuer="https://idp.acme.example", client_id="acme", enabled=True, last_test_ok=True
    )
    acme.org.sso_required = True
    acme.org.save(update_fields=["sso_required"])
    return acme


def password_login(user) -> tuple[Client, object]:
    client = Client()
    res = client.post(reverse("account_login"), {"login": user.email, "password": PASSWORD})
    return client, res


def test_a_member_of_an_sso_required_org_cannot_sign_in_with_a_password(required):
    bob = required.user(Role.MEMBER)
    client, res = password_login(bob)
    # sent to single sign-on, with the reason, and not signed in
    assert res.status_code == 302
    assert res["Location"].startswith(reverse("sso_start")) and "email=member%40acme.test" in res["Location"]
    page = client.get(res["Location"])
    assert "requires single sign-on" in page.content.decode()
    assert "_auth_user_id" not in client.session
    assert AuditEvent.objects.filter(org_id=required.org.pk, action="sso.password_login_refused").exists()


def test_an_owner_keeps_an_audited_break_glass_password_sign_in(required):
    alice = required.owner
    client, res = password_login(alice)
    assert res.status_code == 302 and client.session["_auth_user_id"] == str(alice.pk)
    assert client.session[SESSION_BREAK_GLASS] == [required.org.pk]
    event = AuditEvent.objects.get(org_id=required.org.pk, action="sso.break_glass_login")
    assert event.target_id == str(alice.pk)
    # visibly flagged, and the org stays open to the owner
    page = client.get(f"/orgs/{required.org.pk}/console/sso/")
    assert page.status_code == 200 and "Break-glass session" in page.content.decode()
    assert client.get(f"/api/v1/orgs/{required.org.pk}").status_code == 200


def test_a_password_session_of_a_member_gets_no_access_to_an_sso_required_org(required, login_client):
    # a session established before the policy, or any other way than the org's own SSO
    admin = login_client(required.user(Role.ADMIN))
    assert_error(admin.get(f"/api/v1/orgs/{required.org.pk}"), 403, "sso_required")
    assert admin.get(f"/orgs/{required.org.pk}/console/sso/").status_code == 403
    # a session signed in through another org's provider does not count either
    session = admin.session
    session["plaza_sso_provider"] = "org-org_SOMEONEELSE"
    session.save()
    assert_error(admin.get(f"/api/v1/orgs/{required.org.pk}"), 403, "sso_required")
    # the org's own provider does
    session["plaza_sso_provider"] = f"org-{required.org.pk}"
    session.save()
    assert admin.get(f"/api/v1/orgs/{required.org.pk}").status_code == 200


def test_members_of_other_orgs_still_sign_in_with_a_password(required, charlie):
    client, res = password_login(charlie)
    assert res.status_code == 302 and client.session["_auth_user_id"] == str(charlie.pk)
    assert SESSION_BREAK_GLASS not in client.session


def test_the_sign_in_page_offers_single_sign_on_without_listing_providers(required, client):
    page = client.get(reverse("account_login")).content.decode()
    assert "Continue with single sign-on" in page
    assert "idp.acme.example" not in page and f"org-{required.org.pk}" not in page


def test_the_email_first_page_explains_an_unknown_domain(required, client):
    res = client.post(reverse("sso_start"), {"email": "someone@elsewhere.test"})
    assert res.status_code == 400 and "not set up for that e-mail domain" in res.content.decode()
    res = client.post(reverse("sso_start"), {"email": "not-an-address"})
    assert res.status_code == 400


def test_the_console_page_shows_redirect_uri_and_routed_domains_to_admins_only(acme, login_client):
    Domain.objects.create(org=acme.org, name="acme.test", verification_token="t", verified_at=clock.now())
    Domain.objects.create(org=acme.org, name="pending.test", verification_token="u")
    admin = login_client(acme.user(Role.ADMIN))
    url = f"/orgs/{acme.org.pk}/console/sso/"
    # when the admin saves a connection through the page
    res = admin.post(
        url,
        {
            "action": "save",
            "issuer": "https://idp.acme.example",
            "client_id": "acme",
            "client_secret": "page-secret-9876",
            "scopes": "openid email",
            "default_role": "member",
        },
    )
    assert res.status_code == 302
    page = admin.get(url).content.decode()
    assert f"/accounts/oidc/org-{acme.org.pk}/login/callback/" in page
    assert "acme.test" in page and "pending.test" not in page
    assert "page-secret-9876" not in page and "9876" in page  # masked: last four only
    # enabling before a test is refused with the reason
    res = admin.post(url, {"action": "enable"})
    assert res.status_code == 400 and "Test the connection successfully" in res.content.decode()
    # a member may not see it
    assert login_client(acme.user(Role.MEMBER)).get(url).status_code == 403


def test_allauths_http_goes_through_the_ssrf_guard(settings):
    settings.PLAZA_ALLOW_PRIVATE_NETWORKS = False
    with pytest.raises(requests.ConnectionError, match="loopback"):
        guarded_session().get("https://127.0.0.1:9/.well-known/openid-configuration")
    with pytest.raises(requests.ConnectionError, match="https"):
        guarded_session().get("http://idp.example.com/")


def test_the_console_test_button_answers_htmx_with_each_check(acme, login_client, settings):
    settings.PLAZA_ALLOW_PRIVATE_NETWORKS = False
    SsoConnection.objects.create(org=acme.org, issuer="https://127.0.0.1:9", client_id="x")
    admin = login_client(acme.user(Role.ADMIN))
    res = admin.post(f"/orgs/{acme.org.pk}/console/sso/", {"action": "test"}, HTTP_HX_REQUEST="true")
    html = res.content.decode()
    assert res.status_code == 200 and html.lstrip().startswith('<div id="sso-test"')
    assert "discovery" in html and "Plaza does not connect" in html and "failed" in html

"""The console's SCIM page: admins issue a token (shown once) that then works at /scim/v2/."""

from __future__ import annotations

import re

import pytest

from apps.orgs.models import ApiToken, Role


@pytest.mark.django_db
def test_admin_issues_a_scim_token_that_works_and_can_revoke_it(acme, login_client):
    browser = login_client(acme.members[Role.ADMIN])
    page = browser.get(f"/orgs/{acme.org.pk}/console/scim/")
    assert page.status_code == 200 and b"/scim/v2/" in page.content
    issued = browser.post(f"/orgs/{acme.org.pk}/console/scim/", {"op": "issue", "name": "Okta"})
    secret = re.search(r'id="new-scim-token">(plz_[^<]+)<', issued.content.decode()).group(1)
    token = ApiToken.objects.get(org=acme.org, last_four=secret[-4:])
    assert token.scopes == ["scim:write"] and token.service_account.role == Role.ADMIN
    scim = browser.get("/scim/v2/Users", HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert scim.status_code == 200 and scim["Content-Type"] == "application/scim+json"
    tested = browser.post(f"/orgs/{acme.org.pk}/console/scim/", {"op": "test"}, HTTP_HX_REQUEST="true")
    assert b"last called Plaza" in tested.content and b"<html" not in tested.content
    browser.post(f"/orgs/{acme.org.pk}/console/scim/", {"op": "revoke", "token": token.pk})
    assert browser.get("/scim/v2/Users", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 401


@pytest.mark.django_db
def test_members_and_outsiders_cannot_open_the_scim_page(acme, globex, login_client):
    assert login_client(acme.members[Role.MEMBER]).get(f"/orgs/{acme.org.pk}/console/scim/").status_code == 403
    assert login_client(globex.owner).get(f"/orgs/{acme.org.pk}/console/scim/").status_code == 404

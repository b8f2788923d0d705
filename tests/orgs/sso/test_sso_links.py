"""A link between a Plaza account and an organisation's identity provider signs in only the person
it still describes: the account's e-mail must be the asserted address in a verified domain, links
end with the membership (removed or deactivated) and with an e-mail change, a deactivated member is
not let back in by single sign-on, and ``email_verified`` is read as a boolean, not a truthy string."""

from __future__ import annotations

import pytest
from allauth.account.models import EmailAddress
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.models import SocialAccount, SocialLogin
from django.test import RequestFactory

from apps.accounts.models import User
from apps.audit.models import AuditEvent
from apps.core import clock
from apps.orgs.models import Domain, Membership, Role, SsoConnection
from apps.orgs.sso.adapter import SsoSocialAccountAdapter, asserted_email
from apps.orgs.sso.services import claim_is_true
from tests.orgs.sso.test_sso_login import sso_sign_in

live = pytest.mark.django_db(transaction=True)


def provider_sub(login: str) -> str:
    """The subject id the test provider asserts for the login ``login``: the login itself (see provider.mjs)."""
    return login


def links(org, user=None):
    rows = SocialAccount.objects.filter(provider=f"org-{org.pk}")
    return rows.filter(user=user) if user is not None else rows


def change_email(user, new_email: str) -> None:
    """What an e-mail change leaves behind: the account and its one verified address are the new one."""
    EmailAddress.objects.filter(user=user).update(email=new_email)
    user.email = new_email
    user.save()


# --- finding 1: stale links ---------------------------------------------------------------------------
@live
def test_a_former_members_stale_link_does_not_sign_in_as_his_account(live_server, oidc_provider, sso_org):
    # given bob signed in through acme's IdP once (and so is linked to its subject id) ...
    bob = sso_org.user(Role.MEMBER)
    session, res = sso_sign_in(live_server.url, bob.email)
    assert session.get(f"{live_server.url}/api/v1/me").json()["email"] == bob.email
    assert links(sso_org.org, bob).count() == 1
    # ... then left acme and changed his address to one outside acme's domains
    Membership.objects.get(org=sso_org.org, user=bob).delete()
    change_email(bob, "bob@elsewhere.example")
    # and the IdP now asserts bob's old subject id with someone else's acme address
    SocialAccount.objects.create(user=bob, provider=f"org-{sso_org.org.pk}", uid=provider_sub("someone@acme.test"))
    # when that identity signs in
    session, res = sso_sign_in(live_server.url, "someone@acme.test")
    # then Plaza refuses: not bob's account, no membership for him, nobody signed in, audited
    assert res.status_code == 403, (res.url, res.text[:300])
    assert "no longer someone@acme.test" in res.text
    assert session.get(f"{live_server.url}/api/v1/me").status_code == 401
    assert not Membership.objects.filter(org=sso_org.org, user=bob).exists()
    assert not User.objects.filter(email="someone@acme.test").exists()
    event = AuditEvent.objects.filter(org_id=sso_org.org.pk, action="sso.login_refused").latest("seq")
    assert event.target_id == str(bob.pk) and "no longer" in event.changes["reason"]


@live
def test_a_linked_account_whose_email_left_the_verified_domains_is_refused(live_server, oidc_provider, sso_org):
    # given bob linked to his subject id, whose account address is now outside acme's domains
    # (the link is made again by hand: changing the address removes it)
    bob = sso_org.user(Role.MEMBER)
    sub = provider_sub(bob.email)
    old_email = bob.email
    change_email(bob, "bob@elsewhere.example")
    SocialAccount.objects.create(user=bob, provider=f"org-{sso_org.org.pk}", uid=sub)
    # when the IdP asserts that subject id with bob's old address
    session, res = sso_sign_in(live_server.url, old_email)
    # then it is refused and his membership is untouched
    assert res.status_code == 403
    assert session.get(f"{live_server.url}/api/v1/me").status_code == 401
    assert Membership.objects.get(org=sso_org.org, user=bob).role == Role.MEMBER


@live
def test_a_deactivated_member_is_not_let_back_in_by_single_sign_on(live_server, oidc_provider, sso_org):
    # given bob signed in through SSO, then was deactivated (SCIM active=false)
    bob = sso_org.user(Role.MEMBER)
    sso_sign_in(live_server.url, bob.email)
    membership = Membership.objects.get(org=sso_org.org, user=bob)
    membership.deactivated_at = clock.now()
    membership.save(update_fields=["deactivated_at"])
    # then his link is gone
    assert not links(sso_org.org, bob).exists()
    # and when he signs in through SSO again (found by his verified address)
    session, res = sso_sign_in(live_server.url, bob.email)
    # he is refused, stays deactivated, and it is audited
    assert res.status_code == 403 and "deactivated" in res.text
    assert session.get(f"{live_server.url}/api/v1/me").status_code == 401
    membership.refresh_from_db()
    assert membership.deactivated_at is not None
    assert not links(sso_org.org, bob).exists()
    event = AuditEvent.objects.filter(org_id=sso_org.org.pk, action="sso.login_refused").latest("seq")
    assert event.target_id == str(bob.pk) and "deactivated" in event.changes["reason"]


@pytest.fixture
def linked(acme):
    """bob (acme's member) linked to acme's IdP and to globex-like other org's IdP."""
    bob = acme.user(Role.MEMBER)
    SocialAccount.objects.create(user=bob, provider=f"org-{acme.org.pk}", uid="sub-acme")
    SocialAccount.objects.create(user=bob, provider="org-org_other", uid="sub-other")
    SocialAccount.objects.create(user=acme.owner, provider=f"org-{acme.org.pk}", uid="sub-alice")
    return bob


def test_removing_a_membership_removes_that_orgs_links_of_the_person(acme, linked):
    Membership.objects.get(org=acme.org, user=linked).delete()
    assert not links(acme.org, linked).exists()
    assert SocialAccount.objects.filter(user=linked, provider="org-org_other").exists()
    assert links(acme.org, acme.owner).exists()


def test_deactivating_a_membership_removes_that_orgs_links_of_the_person(acme, linked):
    membership = Membership.objects.get(org=acme.org, user=linked)
    membership.deactivated_at = clock.now()
    membership.save(update_fields=["deactivated_at", "updated_at"])
    assert not links(acme.org, linked).exists()
    assert SocialAccount.objects.filter(user=linked, provider="org-org_other").exists()
    assert links(acme.org, acme.owner).exists()


def test_changing_the_accounts_email_removes_its_identity_provider_links(acme, linked):
    # saving without an address change keeps them
    linked.name = "Bob"
    linked.save()
    linked.save(update_fields=["name"])
    assert SocialAccount.objects.filter(user=linked).count() == 2
    # an address change removes every organisation IdP link, also through update_fields
    linked.email = "bob@elsewhere.example"
    linked.save(update_fields=["email"])
    assert not SocialAccount.objects.filter(user=linked).exists()
    assert links(acme.org, acme.owner).exists()


# --- finding 2: email_verified as a string ----------------------------------------------------------
@pytest.mark.parametrize(
    ("claim", "verified"),
    [
        (True, True),
        ("true", True),
        ("TRUE", True),
        (False, False),
        ("false", False),
        ("False", False),
        ("", False),
        (None, False),
        (1, False),
        ("yes", False),
    ],
)
def test_email_verified_is_true_only_for_true_or_the_string_true(claim, verified):
    assert claim_is_true(claim) is verified


def _sociallogin(org, email: str, verified, user=None) -> SocialLogin:
    account = SocialAccount(provider=f"org-{org.pk}", uid=provider_sub(email))
    return SocialLogin(
        account=account,
        user=user or User(email=email),
        email_addresses=[EmailAddress(email=email, verified=verified, primary=True)],
    )


def test_the_adapter_refuses_an_email_verified_claim_of_false_as_a_string(acme):
    Domain.objects.create(org=acme.org, name="acme.test", verification_token="t", verified_at=clock.now())
    SsoConnection.objects.create(org=acme.org, issuer="https://idp.acme.example", client_id="acme", enabled=True)
    sociallogin = _sociallogin(acme.org, "newhire@acme.test", "false")
    assert asserted_email(sociallogin) == ("newhire@acme.test", False)
    request = RequestFactory().get("/accounts/oidc/callback/")
    with pytest.raises(ImmediateHttpResponse) as refused:
        SsoSocialAccountAdapter(request).pre_social_login(request, sociallogin)
    assert refused.value.response.status_code == 403
    assert b"did not assert that newhire@acme.test is verified" in refused.value.response.content
    # and nothing downstream reads the raw string as verified
    assert sociallogin.email_addresses[0].verified is False
    assert AuditEvent.objects.filter(org_id=acme.org.pk, action="sso.login_refused").exists()


@live
def test_a_provider_sending_email_verified_as_the_string_false_is_refused(live_server, oidc_provider, sso_org):
    session, res = sso_sign_in(live_server.url, "newhire@acme.test", idp_login="string-false+newhire@acme.test")
    assert res.status_code == 403 and "did not assert that newhire@acme.test is verified" in res.text
    assert not User.objects.filter(email="newhire@acme.test").exists()
    assert session.get(f"{live_server.url}/api/v1/me").status_code == 401


@live
def test_a_provider_sending_email_verified_as_the_string_true_signs_in(live_server, oidc_provider, sso_org):
    session, res = sso_sign_in(live_server.url, "newhire@acme.test", idp_login="string-true+newhire@acme.test")
    assert session.get(f"{live_server.url}/api/v1/me").json()["email"] == "newhire@acme.test"
    assert User.objects.get(email="newhire@acme.test").emailaddress_set.get().verified

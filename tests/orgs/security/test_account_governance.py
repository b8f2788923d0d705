"""An organisation acts on a person's whole account (ends all their sessions, resets their
factors, lists their sessions) only when it governs that account: an address in one of its
verified domains, or no other organisation. And a deactivated membership stays deactivated when
the person signs in again."""

from __future__ import annotations

import time

from django.utils import timezone

from apps.orgs.models import Domain, Membership, Role
from apps.orgs.services.provisioning import member_deactivate
from tests.factories import MembershipFactory
from tests.orgs.security.conftest import give_factors, set_policy, signed_in
from tests.orgs.test_authorization import assert_error


def _add_charlie_to_acme(acme, charlie) -> Membership:
    """charlie belongs to globex; acme adds him too (say as a contractor)."""
    return MembershipFactory(org=acme.org, user=charlie, role=Role.MEMBER)


def test_an_org_cannot_reset_factors_or_sign_out_someone_whose_account_it_does_not_govern(acme, globex, charlie):
    membership = _add_charlie_to_acme(acme, charlie)
    give_factors(charlie)
    charlie_client = signed_in(charlie)
    admin = signed_in(acme.user(Role.ADMIN))
    # when acme's admin tries to reset charlie's factors or sign him out everywhere
    for action in ("mfa-reset", "sign-out"):
        res = admin.call("POST", f"orgs/{acme.org.pk}/members/{membership.pk}/{action}")
        assert_error(res, 403, "account_not_governed")
    # then charlie keeps his factors and his globex session
    assert charlie.totpdevice_set.filter(confirmed=True).exists()
    assert charlie_client.get(f"/orgs/{globex.org.pk}/").status_code == 200
    # and acme's session list does not show him
    emails = {row["email"] for row in admin.call("GET", f"orgs/{acme.org.pk}/sessions").json()["data"]}
    assert charlie.email not in emails


def test_an_org_governs_accounts_in_its_verified_domains(acme, globex, charlie):
    membership = _add_charlie_to_acme(acme, charlie)
    give_factors(charlie)
    signed_in(charlie)
    domain = charlie.email.rpartition("@")[2]
    Domain.objects.create(org=acme.org, name=domain, verification_token="t", verified_at=timezone.now())
    admin = signed_in(acme.user(Role.ADMIN))
    res = admin.call("POST", f"orgs/{acme.org.pk}/members/{membership.pk}/mfa-reset")
    assert res.status_code == 200 and res.json()["devices_removed"] == 2


def test_a_deactivated_member_who_signs_in_again_still_gets_nothing(acme, bob):
    from apps.orgs.policy import Principal

    member_deactivate(
        principal=Principal(kind="user", user=acme.owner, mfa_verified=True),
        membership=Membership.objects.get(org=acme.org, user=bob),
        reason="left",
    )
    again = signed_in(bob)
    assert_error(again.call("GET", f"orgs/{acme.org.pk}"), 404)
    assert_error(again.call("GET", f"orgs/{acme.org.pk}/members"), 404)
    assert again.get(f"/orgs/{acme.org.pk}/").status_code == 404
    assert acme.org.pk not in {o["id"] for o in again.call("GET", "orgs").json()["data"]}


def test_the_strictest_max_session_age_also_guards_the_account_pages(acme, alice):
    set_policy(acme.org, max_session_age_minutes=5)
    client = signed_in(alice)
    session = client.session
    session["plaza_login_at"] = time.time() - 6 * 60
    session.save()
    # an old (perhaps stolen) session cannot change the account's e-mail or password
    for path in ("/accounts/email/", "/accounts/password/change/"):
        page = client.get(path)
        assert page.status_code == 302 and page["Location"].startswith("/accounts/login/"), path
    assert_error(client.call("GET", "me"), 401)

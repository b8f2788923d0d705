"""The admin console's pages: who may open them, the members table and its filters, the identity
audit view."""

from __future__ import annotations

import datetime as dt
import secrets

import pytest
from django.urls import reverse
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.accounts.models import UserSession
from apps.audit.services import audit_record
from apps.core import clock
from apps.orgs.models import Membership, Role
from tests.factories import MembershipFactory, UserFactory
from tests.orgs.test_authorization import session_client

PAGES = ["org_console", "org_console_members", "org_console_groups", "org_console_audit"]


def url(name: str, org, **kwargs) -> str:
    return reverse(name, kwargs={"org_id": org.pk, **kwargs})


# --- who may open the console ---------------------------------------------------------------------
@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN])
def test_console_pages_render_for_admins(acme, page, role):
    res = session_client(acme.user(role)).get(url(page, acme.org))
    assert res.status_code == 200
    assert b"Admin console" in res.content or b"console" in res.content


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("role", [Role.DEVELOPER, Role.BILLING, Role.MEMBER])
def test_console_pages_refuse_other_roles(acme, page, role):
    res = session_client(acme.user(role)).get(url(page, acme.org))
    assert res.status_code == 403
    assert "errors/403.html" in [t.name for t in res.templates]


@pytest.mark.parametrize("page", PAGES)
def test_console_pages_of_another_organisation_are_not_found(acme, globex, page):
    res = session_client(globex.owner).get(url(page, acme.org))
    assert res.status_code == 404


def test_console_pages_need_a_sign_in(acme, client):
    res = client.get(url("org_console", acme.org))
    assert res.status_code == 302 and "/accounts/login/" in res["Location"]


def test_the_org_navigation_shows_the_console_to_admins_only(acme):
    console = url("org_console", acme.org)
    for role, shown in [(Role.OWNER, True), (Role.ADMIN, True), (Role.DEVELOPER, False), (Role.MEMBER, False)]:
        res = session_client(acme.user(role)).get(url("org_overview", acme.org))
        assert (f'href="{console}"'.encode() in res.content) is shown, role


def test_console_home_links_every_section(acme):
    res = session_client(acme.owner).get(url("org_console", acme.org))
    base = f"/orgs/{acme.org.pk}/console/"
    for path in ("members/", "groups/", "sso/", "scim/", "sessions/", "audit/"):
        assert f'href="{base}{path}"'.encode() in res.content, path
    assert f'href="/orgs/{acme.org.pk}/security/"'.encode() in res.content


# --- the members table ----------------------------------------------------------------------------
@pytest.fixture
def people(acme, engineering):
    """A SCIM member with an authenticator app and a recent session; a deactivated SSO member;
    an invited admin with backup codes only."""
    scim = MembershipFactory(
        org=acme.org, role=Role.DEVELOPER, source="scim", external_id="00u-fox",
        user=UserFactory(email="fox@acme.test", name="Fox Mulder"),
    )  # fmt: skip
    TOTPDevice.objects.create(user=scim.user, name="phone", confirmed=True)
    TOTPDevice.objects.create(user=acme.user(Role.MEMBER), name="unconfirmed", confirmed=False)
    seen = clock.now() - dt.timedelta(hours=2)
    UserSession.objects.create(user=scim.user, session_key=secrets.token_hex(16), last_seen_at=seen)
    engineering.members.add(scim)
    sso = MembershipFactory(
        org=acme.org, source="sso", deactivated_at=clock.now(), user=UserFactory(email="walter@acme.test", name="")
    )
    invited = MembershipFactory(
        org=acme.org, role=Role.ADMIN, source="invitation", user=UserFactory(email="gina@acme.test", name="Gina")
    )
    StaticDevice.objects.create(user=invited.user, name="backup", confirmed=True)
    return {"scim": scim, "sso": sso, "invited": invited, "seen": seen}


def row_of(res, email: str) -> str:
    """The table row that names ``email``."""
    html = res.content.decode()
    start = html.index(email)
    return html[html.rindex("<tr", 0, start) : html.index("</tr>", start)]


def test_members_table_shows_source_factors_last_sign_in_status_and_groups(acme, people):
    res = session_client(acme.owner).get(url("org_console_members", acme.org))
    assert res.status_code == 200
    fox = row_of(res, "fox@acme.test")
    assert "SCIM" in fox and "00u-fox" in fox
    assert "Authenticator app" in fox and ">On<" in fox
    assert people["seen"].strftime("%Y-%m-%d %H:%M") in fox
    assert "Active" in fox and "Engineering" in fox
    assert f"/orgs/{acme.org.pk}/console/members/{people['scim'].pk}/security/" in fox
    walter = row_of(res, "walter@acme.test")
    assert "SSO" in walter and "Deactivated" in walter and ">Off<" in walter and "Never" in walter
    gina = row_of(res, "gina@acme.test")
    assert "Invitation" in gina and "Backup codes" in gina
    bob = row_of(res, acme.user(Role.MEMBER).email)  # an unconfirmed device is no second factor
    assert ">Off<" in bob


def test_last_sign_in_falls_back_to_the_last_login(acme, people):
    when = clock.now() - dt.timedelta(days=3)
    type(acme.owner).objects.filter(pk=people["invited"].user_id).update(last_login=when)
    res = session_client(acme.owner).get(url("org_console_members", acme.org))
    assert when.strftime("%Y-%m-%d %H:%M") in row_of(res, "gina@acme.test")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"source": "scim"}, {"fox@acme.test"}),
        ({"source": "sso"}, {"walter@acme.test"}),
        ({"source": "invitation"}, {"gina@acme.test"}),
        ({"mfa": "on"}, {"fox@acme.test", "gina@acme.test"}),
        ({"status": "deactivated"}, {"walter@acme.test"}),
        ({"role": "developer"}, {"fox@acme.test", "developer@acme.test"}),
        ({"q": "mulder"}, {"fox@acme.test"}),
        ({"q": "GINA@acme"}, {"gina@acme.test"}),
        ({"mfa": "on", "role": "admin"}, {"gina@acme.test"}),
    ],
)
def test_members_filters(acme, people, query, expected):
    res = session_client(acme.owner).get(url("org_console_members", acme.org), query)
    shown = {m.user.email for m in res.context["members"]}
    assert shown == expected


def test_members_filter_mfa_off_and_active(acme, people):
    res = session_client(acme.owner).get(url("org_console_members", acme.org), {"mfa": "off", "status": "active"})
    shown = {m.user.email for m in res.context["members"]}
    assert "fox@acme.test" not in shown and "gina@acme.test" not in shown and "walter@acme.test" not in shown
    assert acme.owner.email in shown


def test_unknown_filter_values_are_ignored(acme, people):
    res = session_client(acme.owner).get(
        url("org_console_members", acme.org), {"source": "x", "mfa": "?", "role": "god"}
    )
    assert res.status_code == 200
    assert len(res.context["members"]) == Membership.objects.filter(org=acme.org).count()


def test_members_empty_state_when_nothing_matches(acme):
    res = session_client(acme.owner).get(url("org_console_members", acme.org), {"q": "nobody-at-all"})
    assert b"No members match these filters." in res.content


def test_members_htmx_request_gets_only_the_table(acme, people):
    res = session_client(acme.owner).get(
        url("org_console_members", acme.org), {"source": "scim"}, HTTP_HX_REQUEST="true"
    )
    assert res.content.lstrip().startswith(b'<div id="member-rows"')
    assert b"fox@acme.test" in res.content and b"<html" not in res.content


def test_members_pages_keep_their_filters(acme, monkeypatch):
    # given 60 SCIM members (the page holds 50)
    for i in range(60):
        MembershipFactory(org=acme.org, source="scim", user=UserFactory(email=f"p{i:02}@acme.test"))
    client = session_client(acme.owner)
    first = client.get(url("org_console_members", acme.org), {"source": "scim"})
    assert len(first.context["members"]) == 50
    next_page = first.context["next_page"]
    assert "source=scim" in next_page and "cursor=" in next_page
    second = client.get(next_page)
    assert len(second.context["members"]) == 10
    assert all(m.source == "scim" for m in second.context["members"])
    assert second.context["next_page"] == ""


def test_members_page_of_another_organisation_shows_none_of_its_members(acme, globex):
    res = session_client(acme.owner).get(url("org_console_members", acme.org))
    assert globex.owner.email.encode() not in res.content


# --- the identity audit view ----------------------------------------------------------------------
def test_identity_audit_shows_identity_events_only(acme):
    for action in ("member.role_changed", "scim.user_created", "group.created", "org.policy_updated", "mfa.enrolled"):
        audit_record(action=action, org_id=acme.org.pk, target_label=f"t-{action}")
    for action in ("extension.created", "workspace.updated", "org.updated"):
        audit_record(action=action, org_id=acme.org.pk, target_label=f"t-{action}")
    res = session_client(acme.owner).get(url("org_console_audit", acme.org))
    actions = {e.action for e in res.context["events"]}
    assert actions == {
        "member.role_changed",
        "scim.user_created",
        "group.created",
        "org.policy_updated",
        "mfa.enrolled",
    }


def test_identity_audit_filters_narrow_further(acme):
    audit_record(action="group.created", org_id=acme.org.pk, target_label="Engineering")
    audit_record(action="member.removed", org_id=acme.org.pk, target_label="bob")
    audit_record(action="extension.created", org_id=acme.org.pk, target_label="Engineering tools")
    client = session_client(acme.owner)
    res = client.get(url("org_console_audit", acme.org), {"action": "group."})
    assert [e.action for e in res.context["events"]] == ["group.created"]
    res = client.get(url("org_console_audit", acme.org), {"target": "Engineering"})
    assert [e.action for e in res.context["events"]] == ["group.created"]
    res = client.get(url("org_console_audit", acme.org), {"action": "extension."})
    assert res.context["events"] == []


def test_identity_audit_pages(acme):
    for i in range(55):
        audit_record(action="member.role_changed", org_id=acme.org.pk, target_label=f"m{i}")
    client = session_client(acme.owner)
    first = client.get(url("org_console_audit", acme.org))
    assert len(first.context["events"]) == 50 and first.context["next_before"]
    second = client.get(url("org_console_audit", acme.org), {"before": first.context["next_before"]})
    assert len(second.context["events"]) == 5


def test_identity_audit_shows_no_other_organisation(acme, globex):
    audit_record(action="member.removed", org_id=globex.org.pk, target_label="globex-secret")
    res = session_client(acme.owner).get(url("org_console_audit", acme.org))
    assert b"globex-secret" not in res.content

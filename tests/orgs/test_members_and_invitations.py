from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.test import Client

from apps.core import clock
from apps.orgs.models import Invitation, Membership, Role
from tests.factories import UserFactory


@pytest.fixture(autouse=True)
def _on_commit(django_capture_on_commit_callbacks):
    global _capture
    _capture = django_capture_on_commit_callbacks
    yield


def _invite(client, org, email, role="member"):
    """Invitation mails go out after commit: run those callbacks as the request's transaction ends."""
    with _capture(execute=True):
        return client.post(
            f"/api/v1/orgs/{org.pk}/invitations", {"email": email, "role": role}, content_type="application/json"
        )


def test_invitation_is_mailed_and_accepted_by_its_recipient(acme, alice, login_client):
    res = _invite(login_client(alice), acme.org, "Dana@Example.com", "developer")
    assert res.status_code == 201, res.content
    assert res.json()["email"] == "dana@example.com" and res.json()["status"] == "pending"
    link = next(line for line in mail.outbox[-1].body.splitlines() if "/invitations/" in line)
    path = "/invitations/" + link.split("/invitations/")[1].split("/")[0] + "/"
    # a different person cannot use the link
    mallory = login_client(UserFactory(email="mallory@example.com"))
    assert mallory.post(path).status_code == 400
    # the invited person signs in with that address and accepts
    dana = login_client(UserFactory(email="dana@example.com"))
    assert dana.get(path).status_code == 200
    assert dana.post(path).status_code == 302
    assert Membership.objects.get(org=acme.org, user__email="dana@example.com").role == Role.DEVELOPER
    # the link is single-use
    assert dana.post(path).status_code == 400


def test_expired_and_revoked_invitations_cannot_be_accepted(acme, alice, login_client):
    client = login_client(alice)
    _invite(client, acme.org, "late@example.com")
    token_path = "/invitations/" + mail.outbox[-1].body.split("/invitations/")[1].split("/")[0] + "/"
    Invitation.objects.filter(email="late@example.com").update(expires_at=clock.now() - dt.timedelta(seconds=1))
    late = login_client(UserFactory(email="late@example.com"))
    res = late.post(token_path)
    assert res.status_code == 400 and b"expired" in res.content
    inv = _invite(client, acme.org, "gone@example.com").json()
    assert client.delete(f"/api/v1/orgs/{acme.org.pk}/invitations/{inv['id']}").json()["status"] == "revoked"


def test_admins_cannot_grant_or_touch_the_owner_role(acme, login_client):
    admin = login_client(acme.user("admin"))
    assert _invite(admin, acme.org, "boss@example.com", "owner").status_code == 403
    owner_membership = Membership.objects.get(org=acme.org, role=Role.OWNER)
    res = admin.patch(
        f"/api/v1/orgs/{acme.org.pk}/members/{owner_membership.pk}", {"role": "member"}, content_type="application/json"
    )
    assert res.status_code == 403 and res.json()["error"]["code"] == "owner_only"


def test_the_last_owner_cannot_leave_or_be_demoted(acme, alice, login_client):
    client = login_client(alice)
    mine = Membership.objects.get(org=acme.org, user=alice)
    res = client.patch(
        f"/api/v1/orgs/{acme.org.pk}/members/{mine.pk}", {"role": "admin"}, content_type="application/json"
    )
    assert res.status_code == 409 and res.json()["error"]["code"] == "last_owner"
    assert client.delete(f"/api/v1/orgs/{acme.org.pk}/members/{mine.pk}").status_code == 409


def test_removed_member_loses_access_at_once(acme, bob, login_client, alice):
    bob_client = login_client(bob)
    assert bob_client.get(f"/api/v1/orgs/{acme.org.pk}").status_code == 200
    m = Membership.objects.get(org=acme.org, user=bob)
    assert login_client(alice).delete(f"/api/v1/orgs/{acme.org.pk}/members/{m.pk}").status_code == 204
    assert bob_client.get(f"/api/v1/orgs/{acme.org.pk}").status_code == 404


def test_portal_invite_form_shows_errors_inline(acme, alice, login_client):
    client = login_client(alice)
    res = client.post(f"/orgs/{acme.org.pk}/members/", {"email": "not-an-email", "role": "member"})
    assert res.status_code == 400 and b"Enter a valid e-mail address" in res.content
    assert not Invitation.objects.exists()


def test_org_creation_makes_the_creator_owner(alice):
    client = Client()
    client.force_login(alice)
    res = client.post("/api/v1/orgs", {"name": "New Co"}, content_type="application/json")
    assert res.status_code == 201
    org_id = res.json()["id"]
    assert Membership.objects.get(org_id=org_id, user=alice).role == Role.OWNER
    assert client.get(f"/api/v1/orgs/{org_id}/workspaces").json()["data"][0]["slug"] == "default"


class FlakyMailBackend:
    """Fails the first ``failures`` sends with a connection error, then delivers to the outbox."""

    failures = 0

    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        if FlakyMailBackend.failures > 0:
            FlakyMailBackend.failures -= 1
            raise ConnectionRefusedError("mail server down")
        mail.outbox.extend(messages)
        return len(messages)


def test_a_failing_mail_server_delays_the_invitation_mail_but_loses_nothing(acme, alice, login_client, settings):
    from apps.core.executor import executor

    settings.PLAZA_EMAIL_DELIVERY_BACKEND = "tests.orgs.test_members_and_invitations.FlakyMailBackend"
    FlakyMailBackend.failures = 2
    # when the mail server refuses twice
    res = _invite(login_client(alice), acme.org, "patient@example.com")
    # then the invitation exists and the request succeeded; the mail waits for its retry
    assert res.status_code == 201
    assert not [m for m in mail.outbox if "patient@example.com" in m.to]
    [retry] = executor.pending()
    assert retry.task_name == "core.send_email" and retry.retries == 1
    # the first retry (30 s later) fails again, the second (60 s after that) delivers
    executor.run_due(clock.now() + dt.timedelta(seconds=31))
    assert executor.pending()[0].retries == 2
    executor.run_due(clock.now() + dt.timedelta(seconds=200))
    sent = [m for m in mail.outbox if "patient@example.com" in m.to]
    assert len(sent) == 1 and "/invitations/" in sent[0].body
    assert executor.pending() == []


def test_an_invitation_revoked_before_its_mail_task_runs_is_not_mailed(acme, alice, login_client):
    client = login_client(alice)
    with _capture(execute=False) as callbacks:  # the request commits; its mail task has not run yet
        inv = client.post(
            f"/api/v1/orgs/{acme.org.pk}/invitations",
            {"email": "changed-mind@example.com"},
            content_type="application/json",
        ).json()
    client.delete(f"/api/v1/orgs/{acme.org.pk}/invitations/{inv['id']}")
    for callback in callbacks:
        callback()
    assert not [m for m in mail.outbox if "changed-mind@example.com" in m.to]

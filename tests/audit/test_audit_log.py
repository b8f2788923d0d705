from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from apps.audit.models import AppendOnlyError, AuditEvent
from apps.audit.services import audit_record, audit_verify


def _raw(sql: str, params=()) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


@pytest.fixture
def chain(acme):
    for n in range(5):
        audit_record(action=f"test.event{n}", org_id=acme.org.pk, changes={"n": n})
    return list(AuditEvent.objects.filter(org_id=acme.org.pk).order_by("seq"))


def test_entries_chain_each_to_the_previous(chain):
    assert [e.seq for e in chain] == list(range(1, 6))
    assert all(later.prev_hash == earlier.hash for earlier, later in zip(chain, chain[1:], strict=False))
    assert audit_verify().ok
    call_command("audit_verify")


def test_verify_detects_an_edited_entry(chain):
    _raw("UPDATE audit_auditevent SET changes = %s WHERE id = %s", (json.dumps({"n": 99}), chain[2].pk))
    report = audit_verify()
    assert [(p.seq, "edited" in p.problem) for p in report.problems] == [(3, True)]
    with pytest.raises(CommandError, match="tampered"):
        call_command("audit_verify")


def test_verify_detects_a_deleted_entry(chain):
    _raw("DELETE FROM audit_auditevent WHERE id = %s", (chain[1].pk,))
    problems = audit_verify().problems
    assert problems and problems[0].seq == 3 and "missing" in problems[0].problem


def test_verify_detects_deleted_newest_entries(chain):
    _raw("DELETE FROM audit_auditevent WHERE id = %s", (chain[-1].pk,))
    problems = audit_verify().problems
    assert problems and "newest entries deleted" in problems[0].problem


def test_verify_detects_a_rehashed_entry_whose_successor_still_links_to_the_old_hash(chain):
    # an attacker edits entry 2 and recomputes its own hash, but entry 3 still links to the old one
    victim = AuditEvent.objects.get(pk=chain[1].pk)
    victim.actor_label = "someone else"
    new_hash = victim.compute_hash()
    _raw("UPDATE audit_auditevent SET actor_label = %s, hash = %s WHERE id = %s", ("someone else", new_hash, victim.pk))
    problems = audit_verify().problems
    assert [p.seq for p in problems] == [3]


def test_orm_refuses_to_change_or_delete_entries(chain):
    entry = chain[0]
    entry.action = "changed"
    with pytest.raises(AppendOnlyError):
        entry.save()
    with pytest.raises(AppendOnlyError):
        entry.delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=entry.pk).update(action="x")
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.all().delete()


def test_api_changes_are_audited_with_actor_ip_agent_and_request_id(acme, api_for):
    api = api_for(acme.org)
    res = api.call(
        "POST",
        f"orgs/{acme.org.pk}/workspaces",
        {"name": "Research"},
        HTTP_USER_AGENT="curl/8",
        HTTP_X_REQUEST_ID="req-test-0000001",
    )
    assert res.status_code == 201
    entry = AuditEvent.objects.get(org_id=acme.org.pk, action="workspace.created")
    assert entry.actor_type == "service_account"
    assert entry.ip == "127.0.0.1"
    assert entry.user_agent == "curl/8"
    assert entry.request_id == "req-test-0000001" == res["X-Request-Id"]
    assert entry.target_id == res.json()["id"]
    assert entry.changes["name"] == "Research"


def test_portal_changes_are_audited_with_the_user(acme, alice, login_client):
    client = login_client(alice)
    res = client.post(f"/orgs/{acme.org.pk}/", {"op": "rename", "name": "Acme Renamed"})
    assert res.status_code == 302
    entry = AuditEvent.objects.get(org_id=acme.org.pk, action="org.updated")
    assert (entry.actor_type, entry.actor_id, entry.actor_label) == ("user", alice.pk, alice.email)
    assert entry.changes == {"name": {"before": "Acme", "after": "Acme Renamed"}}


def test_export_streams_json_lines_oldest_first(chain, acme, api_for):
    api = api_for(acme.org)
    res = api.call("GET", f"orgs/{acme.org.pk}/audit-events/export?action=test.")
    assert res.status_code == 200
    assert res["Content-Type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in b"".join(res.streaming_content).decode().splitlines()]
    assert [line["action"] for line in lines] == [f"test.event{n}" for n in range(5)]
    assert lines[1]["prev_hash"] == lines[0]["hash"]


def test_list_filters_and_pages(chain, acme, api_for):
    api = api_for(acme.org)
    first = api.call("GET", f"orgs/{acme.org.pk}/audit-events?action=test.&limit=2").json()
    assert [e["action"] for e in first["data"]] == ["test.event4", "test.event3"]
    second = api.call(
        "GET", f"orgs/{acme.org.pk}/audit-events?action=test.&limit=2&cursor={first['next_cursor']}"
    ).json()
    assert [e["action"] for e in second["data"]] == ["test.event2", "test.event1"]
    only = api.call("GET", f"orgs/{acme.org.pk}/audit-events?action=test.event3").json()["data"]
    assert len(only) == 1


def test_portal_viewer_filters_with_htmx(chain, acme, alice, login_client):
    client = login_client(alice)
    full = client.get(f"/orgs/{acme.org.pk}/audit/")
    assert full.status_code == 200 and b"<html" in full.content and b"test.event4" in full.content
    partial = client.get(f"/orgs/{acme.org.pk}/audit/?action=test.event1", HTTP_HX_REQUEST="true")
    body = partial.content.decode()
    assert "<html" not in body and 'id="audit-rows"' in body
    assert "test.event1" in body and "test.event4" not in body


def test_members_cannot_read_the_audit_log(acme, bob, login_client):
    assert login_client(bob).get(f"/orgs/{acme.org.pk}/audit/").status_code == 403


def test_portal_export_link_downloads_with_the_session(chain, acme, alice, login_client):
    client = login_client(alice)
    page = client.get(f"/orgs/{acme.org.pk}/audit/?action=test.event2").content.decode()
    href = page.split('class="button secondary" href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    res = client.get(href)
    assert res.status_code == 200
    lines = b"".join(res.streaming_content).decode().splitlines()
    assert len(lines) == 1 and '"test.event2"' in lines[0]

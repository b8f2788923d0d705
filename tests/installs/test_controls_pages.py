"""The install controls' console pages: the extension rules page, the install requests page and a
member's request form — who may open them, their forms (with and without htmx) and bad input."""

from __future__ import annotations

import pytest
from django.core import mail
from django.urls import reverse

from apps.installs.models import Installation, InstallationStatus, InstallPolicy, InstallRequest, InstallRule
from apps.installs.services import controls
from apps.orgs.models import Role
from tests.installs.support import installed, person, session
from tests.orgs.test_authorization import session_client

HTMX = {"HTTP_HX_REQUEST": "true"}


def url(name: str, org, **query) -> str:
    path = reverse(name, kwargs={"org_id": org.pk})
    return path + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def ask(acme, version, role=Role.MEMBER) -> InstallRequest:
    return controls.install_request_create(principal=person(acme.user(role)), org=acme.org, extension=version.extension)


# --- who may open them ----------------------------------------------------------------------------
@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN])
def test_the_rules_page_is_for_admins(acme, role):
    res = session_client(acme.user(role)).get(url("install_rules", acme.org))
    assert res.status_code == 200 and b"Extension rules" in res.content


@pytest.mark.parametrize("role", [Role.DEVELOPER, Role.BILLING, Role.MEMBER])
def test_the_rules_page_refuses_other_roles(acme, role):
    res = session_client(acme.user(role)).get(url("install_rules", acme.org))
    assert res.status_code == 403


@pytest.mark.parametrize("name", ["install_rules", "install_requests", "install_request_new"])
def test_another_organisations_pages_are_not_found(acme, globex, vendor, name):
    extension = vendor.release().extension
    res = session_client(globex.owner).get(url(name, acme.org, extension=extension.pk))
    assert res.status_code == 404


def test_the_console_navigation_links_the_controls(acme):
    res = session_client(acme.owner).get(reverse("org_console", kwargs={"org_id": acme.org.pk}))
    for name in ("install_rules", "install_requests"):
        assert f'href="{url(name, acme.org)}"'.encode() in res.content


# --- the rules page -------------------------------------------------------------------------------
def test_an_admin_adds_a_rule_and_sees_what_it_blocks(acme, vendor):
    # given an installed extension that fetches from the internet
    version = vendor.release(scopes=["events:read:order.created", "http:fetch:api.example.com"])
    inst = installed(session(acme.owner), acme.org, version)
    client = session_client(acme.owner)
    # when the admin adds "never allow http:fetch:*" (no JavaScript: post, redirect, get)
    res = client.post(
        url("install_rules", acme.org),
        {"op": "add", "kind": "scope", "effect": "deny", "value": "http:fetch:*", "note": "No egress"},
    )
    assert res.status_code == 302
    page = client.get(res["Location"]).content.decode()
    # then the rule is listed with what it blocks, and the installation is blocked
    assert "It blocks 1 installed extension." in page
    assert "every scope starting with &#x27;http:fetch:&#x27;" in page and "No egress" in page
    assert f"/console/installations/{inst.pk}/" in page and "Blocked installations" in page
    inst.refresh_from_db()
    assert inst.status == InstallationStatus.BLOCKED


def test_htmx_gets_only_the_controls_with_the_outcome(acme, vendor):
    vendor.release()
    res = session_client(acme.owner).post(
        url("install_rules", acme.org), {"op": "add", "kind": "publisher", "effect": "deny", "value": "vendor"}, **HTMX
    )
    html = res.content.decode()
    assert res.status_code == 200 and "<html" not in html and 'id="controls"' in html
    assert "Rule added: deny publisher" in html and "Vendor" in html


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"op": "add", "kind": "scope", "effect": "allow", "value": "kv:*"}, "Scope rules only deny"),
        ({"op": "add", "kind": "scope", "effect": "deny", "value": "files:*"}, "matches no Plaza scope"),
        ({"op": "add", "kind": "gadget", "effect": "deny", "value": "kv:*"}, "The kind is one of"),
        ({"op": "add", "kind": "scope", "effect": "deny", "value": "kv:*\x00"}, "control characters"),
        ({"op": "add", "kind": "scope", "effect": "deny", "value": "k" * 5000}, "at most 200"),
        ({"op": "add", "kind": "extension", "effect": "deny", "value": "nobody.nothing"}, "No extension"),
        ({"op": "explode"}, "Unknown action"),
        ({"op": "policy", "mode": "closed"}, "The mode is one of"),
    ],
)
def test_bad_rule_forms_answer_400_with_the_message_and_change_nothing(acme, form, message):
    res = session_client(acme.owner).post(url("install_rules", acme.org), form)
    assert res.status_code == 400
    assert message in res.content.decode()
    assert not InstallRule.objects.exists() and not InstallPolicy.objects.exists()


def test_htmx_gets_a_refusal_inside_the_controls(acme):
    # htmx does not swap 4xx responses: the error comes back in a 200 partial
    res = session_client(acme.owner).post(
        url("install_rules", acme.org), {"op": "add", "kind": "scope", "effect": "allow", "value": "kv:*"}, **HTMX
    )
    html = res.content.decode()
    assert res.status_code == 200 and "<html" not in html and "Scope rules only deny" in html
    assert not InstallRule.objects.exists()


def test_removing_a_rule_unblocks_and_another_organisations_rule_is_not_found(acme, globex, vendor):
    version = vendor.release()
    inst = installed(session(acme.owner), acme.org, version)
    rule = controls.install_rule_create(
        principal=person(acme.owner), org=acme.org, kind="extension", effect="deny", value=version.extension_id
    )
    theirs = controls.install_rule_create(
        principal=person(globex.owner), org=globex.org, kind="scope", effect="deny", value="kv:*"
    )
    client = session_client(acme.owner)
    res = client.post(url("install_rules", acme.org), {"op": "remove", "rule": theirs.pk})
    assert res.status_code == 404 and InstallRule.objects.filter(pk=theirs.pk).exists()
    res = client.post(url("install_rules", acme.org), {"op": "remove", "rule": rule.pk}, **HTMX)
    assert res.status_code == 200 and "Rule removed" in res.content.decode()
    inst.refresh_from_db()
    assert inst.status == InstallationStatus.ACTIVE


def test_the_mode_switch_previews_and_blocks(acme, vendor):
    inst = installed(session(acme.owner), acme.org, vendor.release())
    client = session_client(acme.owner)
    page = client.get(url("install_rules", acme.org)).content.decode()
    assert "would block 1 installed extension" in page and "Order Tagger" in page
    res = client.post(url("install_rules", acme.org), {"op": "policy", "mode": "allowlist", "requests_enabled": "on"})
    assert res.status_code == 302
    inst.refresh_from_db()
    assert inst.status == InstallationStatus.BLOCKED
    assert InstallPolicy.objects.get(org=acme.org).mode == "allowlist"
    # turning requests off is the same form without the box
    client.post(url("install_rules", acme.org), {"op": "policy", "mode": "allowlist"})
    assert InstallPolicy.objects.get(org=acme.org).requests_enabled is False


# --- the requests page ----------------------------------------------------------------------------
def test_admins_see_pending_requests_with_decisions_and_an_install_link(acme, vendor):
    version = vendor.release()
    request = ask(acme, version)
    page = session_client(acme.owner).get(url("install_requests", acme.org)).content.decode()
    assert acme.user(Role.MEMBER).email in page and "Order Tagger" in page
    assert 'value="approve"' in page and 'value="deny"' in page
    consent = reverse("install_consent", kwargs={"org_id": acme.org.pk, "extension_id": version.extension_id})
    assert f'href="{consent}"' in page
    assert request.pk in page


def test_the_page_says_when_the_rules_refuse_a_requested_extension(acme, vendor):
    version = vendor.release()
    ask(acme, version)
    controls.install_rule_create(
        principal=person(acme.owner), org=acme.org, kind="publisher", effect="deny", value="vendor"
    )
    page = session_client(acme.owner).get(url("install_requests", acme.org)).content.decode()
    assert "Your rules refuse it" in page and ">Install now</a>" not in page


def test_an_admin_approves_with_a_note_and_the_member_is_mailed(acme, vendor, django_capture_on_commit_callbacks):
    request = ask(acme, vendor.release())
    client = session_client(acme.owner)
    with django_capture_on_commit_callbacks(execute=True):
        res = client.post(
            url("install_requests", acme.org), {"op": "approve", "request": request.pk, "note": "Done soon."}, **HTMX
        )
    assert res.status_code == 200 and "request approved" in res.content.decode()
    request.refresh_from_db()
    assert request.status == "approved" and request.decision_note == "Done soon."
    assert mail.outbox[-1].to == [acme.user(Role.MEMBER).email]


def test_members_see_their_own_requests_and_withdraw_them(acme, vendor):
    mine = ask(acme, vendor.release())
    ask(acme, vendor.release("other", "1.0.0"), role=Role.DEVELOPER)
    client = session_client(acme.user(Role.MEMBER))
    page = client.get(url("install_requests", acme.org)).content.decode()
    assert "Order Tagger" in page and "Other" not in page and 'value="approve"' not in page
    assert 'value="withdraw"' in page
    res = client.post(url("install_requests", acme.org), {"op": "withdraw", "request": mine.pk})
    assert res.status_code == 302
    mine.refresh_from_db()
    assert mine.status == "withdrawn"


def test_members_cannot_decide_or_withdraw_others_requests(acme, vendor):
    theirs = ask(acme, vendor.release(), role=Role.DEVELOPER)
    client = session_client(acme.user(Role.MEMBER))
    assert client.post(url("install_requests", acme.org), {"op": "approve", "request": theirs.pk}).status_code == 403
    assert client.post(url("install_requests", acme.org), {"op": "withdraw", "request": theirs.pk}).status_code == 404
    assert client.post(url("install_requests", acme.org), {"op": "withdraw", "request": "irq_x\x00"}).status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == "pending"


def test_hostile_filters_do_not_break_the_requests_page(acme):
    client = session_client(acme.owner)
    for query in ({"status": "\x00"}, {"status": "x" * 5000}, {"cursor": "!!"}, {"mine": "\x00"}):
        assert client.get(url("install_requests", acme.org), query).status_code == 200


# --- the request form -----------------------------------------------------------------------------
def test_a_member_asks_from_the_form(acme, vendor):
    version = vendor.release()
    client = session_client(acme.user(Role.MEMBER))
    page = client.get(url("install_request_new", acme.org, extension=version.extension_id))
    assert page.status_code == 200 and "Ask for Order Tagger" in page.content.decode()
    res = client.post(url("install_request_new", acme.org, extension=version.extension_id), {"reason": "For tags."})
    assert res.status_code == 302 and res["Location"] == url("install_requests", acme.org)
    request = InstallRequest.objects.get()
    assert request.reason == "For tags." and request.requested_by == acme.user(Role.MEMBER)
    # asking again says so instead of showing the form
    again = client.get(url("install_request_new", acme.org, extension=version.extension_id)).content.decode()
    assert "You have asked for Order Tagger already" in again


def test_the_form_refuses_bad_reasons_and_duplicates(acme, vendor):
    version = vendor.release()
    client = session_client(acme.user(Role.MEMBER))
    path = url("install_request_new", acme.org, extension=version.extension_id)
    assert client.post(path, {"reason": "bell\x07"}).status_code == 400
    assert client.post(path, {"reason": "x" * 1500}).status_code == 400
    assert not InstallRequest.objects.exists()
    assert client.post(path, {"reason": "ok"}).status_code == 302
    res = client.post(path, {"reason": "again"})
    assert res.status_code == 409 and "already" in res.content.decode()


@pytest.mark.parametrize("extension", ["", "nope", "ext_01JAAAAAAAAAAAAAAAAAAAAAAA", "ext_\x00"])
def test_the_form_for_an_unknown_extension_is_not_found(acme, extension):
    res = session_client(acme.user(Role.MEMBER)).get(url("install_request_new", acme.org), {"extension": extension})
    assert res.status_code == 404


def test_the_form_tells_an_installed_extension_and_admins_may_install_themselves(acme, vendor):
    version = vendor.release()
    page = session_client(acme.owner).get(url("install_request_new", acme.org, extension=version.extension_id))
    consent = reverse("install_consent", kwargs={"org_id": acme.org.pk, "extension_id": version.extension_id})
    assert f'href="{consent}"' in page.content.decode()
    installed(session(acme.owner), acme.org, version)
    page = session_client(acme.user(Role.MEMBER)).get(
        url("install_request_new", acme.org, extension=version.extension_id)
    )
    assert "is installed in Acme already" in page.content.decode()
    assert Installation.objects.count() == 1

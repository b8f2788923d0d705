"""Two safety nets around installations: a lost release task is picked up by the periodic sweep,
and an installation's service account can only be managed through the installation."""

from __future__ import annotations

from apps.extensions.models import ChannelRelease
from apps.installs.models import Installation
from apps.installs.tasks import sweep_releases
from apps.orgs.models import ApiToken, ServiceAccount
from tests.installs.support import installed, session


def test_sweep_applies_a_release_whose_task_was_lost(vendor, acme):
    # given an installation that follows stable automatically
    installation = installed(session(acme.owner), acme.org, vendor.release(version="1.0.0"))
    # and a 1.0.1 release whose apply task never ran (promoted outside a commit: no receiver fired)
    newer = vendor.release(version="1.0.1")
    Installation.objects.filter(pk=installation.pk).update(version=installation.version, pending_version=None)
    assert ChannelRelease.objects.filter(version=newer).exists()

    # when the sweep runs
    changed = sweep_releases()

    # then the installation runs 1.0.1, and a second sweep changes nothing
    installation.refresh_from_db()
    assert installation.version_id == newer.pk and changed == 1
    assert sweep_releases() == 0


def test_admins_cannot_mint_tokens_for_or_disable_an_installation_account(vendor, acme, api_for):
    installation = installed(session(acme.owner), acme.org, vendor.release(version="1.0.0"))
    account = ServiceAccount.objects.get(org=acme.org, installation_id=installation.pk)
    admin = api_for(acme.org, role="owner")

    listed = admin.call("GET", f"orgs/{acme.org.pk}/service-accounts/{account.pk}")
    assert listed.status_code == 200 and listed.json()["installation_id"] == installation.pk

    minted = admin.call(
        "POST", f"orgs/{acme.org.pk}/service-accounts/{account.pk}/tokens", {"name": "mine", "scopes": ["org:read"]}
    )
    assert minted.status_code == 409 and minted.json()["error"]["code"] == "managed_service_account"
    disabled = admin.call("POST", f"orgs/{acme.org.pk}/service-accounts/{account.pk}/disable")
    assert disabled.status_code == 409 and disabled.json()["error"]["code"] == "managed_service_account"
    assert not ApiToken.objects.filter(service_account=account).exists()
    account.refresh_from_db()
    assert account.disabled_at is None


def test_installing_answers_the_members_pending_requests(vendor, acme, django_capture_on_commit_callbacks, mailoutbox):
    from apps.installs.models import InstallRequest

    # given bob asked for the extension
    version = vendor.release(version="1.0.0")
    request = InstallRequest.objects.create(org=acme.org, extension=version.extension, requested_by=acme.user("member"))

    # when alice installs it
    with django_capture_on_commit_callbacks(execute=True):
        installation = installed(session(acme.owner), acme.org, version)

    # then the request is approved by the installation, and bob hears of it
    request.refresh_from_db()
    assert request.status == "approved" and request.decided_by == acme.owner
    assert request.decision_note == "Installed." and installation.status == "active"
    assert any(acme.user("member").email in m.to for m in mailoutbox)

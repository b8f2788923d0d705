"""Two admins at once (PostgreSQL row locks): one installation changes one step at a time, and the
loser of a race gets a clear 409, never a 500 or a half-applied change."""

from __future__ import annotations

import threading

import pytest

from apps.core.errors import Conflict
from apps.installs import services
from apps.installs.models import CleanupReport, Installation, InstallationVersion
from apps.installs.services import _common
from tests.installs.support import person
from tests.test_review_findings import _in_threads, postgres_only

pytestmark = [postgres_only, pytest.mark.django_db(transaction=True)]


def _hold_inside_the_lock(monkeypatch, parties: int):
    """Every caller waits, right after taking the installation's row lock, until all have arrived
    (or a timeout says the others are blocked on the lock, as they should be)."""
    gate = threading.Barrier(parties, timeout=1)
    real_lock = _common.lock

    def lock_then_wait(installation):
        locked = real_lock(installation)
        try:
            gate.wait()
        except threading.BrokenBarrierError:
            pass
        return locked

    for module in ("lifecycle", "updates"):
        monkeypatch.setattr(f"apps.installs.services.{module}.lock", lock_then_wait)


def test_an_update_racing_an_uninstall_never_updates_an_uninstalled_installation(acme, vendor, monkeypatch):
    # given a pinned installation of 1.0.0 with 1.1.0 on offer
    v1 = vendor.release(version="1.0.0")
    alice = person(acme.owner)
    installation = services.installation_create(
        principal=alice, org=acme.org, extension=v1.extension, granted_scopes=v1.scopes, update_policy="pinned"
    )
    vendor.release(version="1.1.0")
    _hold_inside_the_lock(monkeypatch, 2)
    # when one admin updates while another uninstalls
    errors = _in_threads(
        lambda: services.installation_update(principal=person(acme.owner), installation=installation),
        lambda: services.installation_uninstall(principal=person(acme.owner), installation=installation),
    )
    # then the uninstall happened, once, and an update either came first or was refused
    installation.refresh_from_db()
    assert installation.status == "uninstalled"
    assert CleanupReport.objects.filter(installation=installation).count() == 1
    assert all(isinstance(e, Conflict) and e.code == "installation_uninstalled" for e in errors), errors
    updates = InstallationVersion.objects.filter(installation=installation, action="update").count()
    assert updates + len(errors) == 1


def test_two_admins_updating_at_once_update_once(acme, vendor, monkeypatch):
    v1 = vendor.release(version="1.0.0")
    installation = services.installation_create(
        principal=person(acme.owner), org=acme.org, extension=v1.extension, granted_scopes=v1.scopes,
        update_policy="pinned",
    )  # fmt: skip
    v2 = vendor.release(version="1.1.0")
    _hold_inside_the_lock(monkeypatch, 2)
    errors = _in_threads(
        *(lambda: services.installation_update(principal=person(acme.owner), installation=installation),) * 2
    )
    assert InstallationVersion.objects.filter(installation=installation, action="update").count() == 1
    assert [getattr(e, "code", repr(e)) for e in errors] == ["no_update"]
    assert Installation.objects.get(pk=installation.pk).version_id == v2.pk


def test_two_installs_at_once_make_one_installation(acme, vendor):
    version = vendor.release()
    gate = threading.Barrier(2, timeout=5)

    def install():
        gate.wait()
        services.installation_create(
            principal=person(acme.owner), org=acme.org, extension=version.extension, granted_scopes=version.scopes
        )

    errors = _in_threads(install, install)
    assert Installation.objects.filter(org=acme.org).count() == 1
    assert [getattr(e, "code", repr(e)) for e in errors] == ["already_installed"]


def test_a_release_racing_an_admins_update_applies_once(acme, vendor, monkeypatch):
    # given an automatic installation of 1.0.0, and 1.1.0 promoted
    v1 = vendor.release(version="1.0.0")
    installation = services.installation_create(
        principal=person(acme.owner), org=acme.org, extension=v1.extension, granted_scopes=v1.scopes
    )
    v2 = vendor.release(version="1.1.0")
    release = v2.releases.get()
    _hold_inside_the_lock(monkeypatch, 2)
    # when the release task and the admin update it at the same moment
    errors = _in_threads(
        lambda: services.channel_release_apply(release=release),
        lambda: services.installation_update(principal=person(acme.owner), installation=installation),
    )
    # then it moved to 1.1.0 exactly once
    assert InstallationVersion.objects.filter(installation=installation, action="update").count() == 1
    assert Installation.objects.get(pk=installation.pk).version_id == v2.pk
    assert [getattr(e, "code", repr(e)) for e in errors] in ([], ["no_update"])


def test_code_running_while_the_installation_is_uninstalled_stores_nothing_after_the_report(acme, vendor, monkeypatch):
    from apps.runtime import host
    from apps.runtime.models import Invocation, KVEntry
    from tests.installs.support import KV_MODULE, KV_SCOPES

    # given an installation whose hook stores a key
    version = vendor.release(scopes=KV_SCOPES, files={"modules/main.wasm": KV_MODULE})
    installation = services.installation_create(
        principal=person(acme.owner), org=acme.org, extension=version.extension, granted_scopes=version.scopes
    )
    # and the hook reaching its write while an uninstall holds the installation's lock (not committed)
    gate = threading.Barrier(2, timeout=5)
    real_lock, real_may_write = _common.lock, host._may_write

    def meet(fn, *args):
        try:
            gate.wait()
        except threading.BrokenBarrierError:
            pass
        return fn(*args)

    def lock_then_meet(row):
        held = real_lock(row)
        return meet(lambda: held)

    monkeypatch.setattr("apps.installs.services.lifecycle.lock", lock_then_meet)
    answers = []
    monkeypatch.setattr(
        host, "_may_write", lambda installation_id: answers.append(meet(real_may_write, installation_id)) or answers[-1]
    )
    reports = []
    errors = _in_threads(
        lambda: services.installation_invoke(installation=installation, export="on_order_created", input_value={}),
        lambda: reports.append(
            services.installation_uninstall(principal=person(acme.owner), installation=installation)
        ),
    )
    # then the code ran, but its write waited for the uninstall and was refused (the wait may run the
    # call past its deadline): the report holds, and no record is linked to the installation
    assert errors == []
    assert answers == [False]
    assert reports[0].verified
    assert not KVEntry.objects.filter(installation_id=installation.pk).exists()
    assert not Invocation.objects.filter(installation_id=installation.pk).exists()

"""A publisher's first extensions created at the same moment (PostgreSQL row locks): one sandbox
tenant, both extensions, no error."""

from __future__ import annotations

import threading

import pytest

from apps.extensions import services as ext_services
from apps.extensions.models import Extension
from apps.orgs.models import Organization
from apps.orgs.services import sandbox as sandbox_module
from tests.factories import OrganizationFactory
from tests.installs.conftest import ROBOT
from tests.test_review_findings import _in_threads, postgres_only

pytestmark = [postgres_only, pytest.mark.django_db(transaction=True)]


def test_two_first_extensions_at_once_make_one_sandbox(monkeypatch):
    # given a publisher without a sandbox, and two requests that both find none before either makes one
    org = OrganizationFactory(slug="racer", name="Racer")
    gate = threading.Barrier(2, timeout=5)
    real = sandbox_module.sandbox_of
    waited = threading.local()

    def look_then_wait(publisher):
        found = real(publisher)
        if not getattr(waited, "done", False):
            waited.done = True
            try:
                gate.wait()
            except threading.BrokenBarrierError:
                pass
        return found

    monkeypatch.setattr(sandbox_module, "sandbox_of", look_then_wait)
    # when both create an extension
    errors = _in_threads(
        lambda: ext_services.extension_create(principal=ROBOT, org=org, name="one"),
        lambda: ext_services.extension_create(principal=ROBOT, org=org, name="two"),
    )
    # then both extensions exist and there is exactly one sandbox
    assert errors == []
    assert Extension.objects.filter(org=org).count() == 2
    assert Organization.objects.filter(sandbox_of=org).count() == 1

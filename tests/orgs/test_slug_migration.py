"""The data migration that takes underscores out of organisation slugs."""

from __future__ import annotations

import importlib

from django.apps import apps as django_apps

from apps.orgs.models import Organization
from tests.factories import OrganizationFactory

migration = importlib.import_module("apps.orgs.migrations.0003_slugs_without_underscores")


def test_underscores_become_hyphens_without_collisions(db):
    OrganizationFactory(slug="acme-co", name="Acme Co")
    OrganizationFactory(slug="acme_co", name="Acme Underscore")
    OrganizationFactory(slug="plain", name="Plain")
    migration.forwards(django_apps, None)
    assert sorted(Organization.objects.values_list("slug", flat=True)) == ["acme-co", "acme-co-2", "plain"]

"""Sandbox tenants: each publisher gets one customer organisation of its own to install its
uncertified versions into before it submits them.

A sandbox has no members of its own: a person's role there is their role in the publisher
(``Principal.role_in``), so it follows the publisher's membership without copying it. It never
publishes (``extension_create`` refuses with ``sandbox_cannot_publish``), has no sandbox itself,
and nothing about it is shown in the public storefront."""

from __future__ import annotations

import secrets

from django.db import IntegrityError, transaction

from apps.audit.services import audit_record
from apps.core.errors import Conflict
from apps.orgs.models import Organization, Workspace

NAME_SUFFIX = " sandbox"
SLUG_SUFFIX = "-sandbox"


def sandbox_of(org: Organization) -> Organization | None:
    """The publisher ``org``'s sandbox tenant, if it has one."""
    return Organization.objects.filter(sandbox_of_id=org.pk).first()


def _slug_for(org: Organization, taken_suffix: str = "") -> str:
    # Slugs are at most 60 characters: "<publisher slug>-sandbox[-<random>]".
    tail = SLUG_SUFFIX + (f"-{taken_suffix}" if taken_suffix else "")
    return f"{org.slug[: 60 - len(tail)].rstrip('-')}{tail}"


def sandbox_org_ensure(*, org: Organization) -> Organization:
    """The sandbox tenant of the publisher ``org``, created the first time it is asked for (as the
    publisher creates its first extension): "<publisher name> sandbox", a unique slug, a Default
    workspace, audited in both organisations. Idempotent, and safe when two requests ask at once:
    the publisher's row is locked, and the database's one-sandbox-per-publisher constraint settles
    any race the lock cannot (SQLite has no row locks)."""
    if org.sandbox_of_id:
        raise Conflict(
            "A sandbox tenant is for installing its publisher's extensions: it cannot publish, and has no sandbox.",
            code="sandbox_cannot_publish",
        )
    existing = sandbox_of(org)
    if existing is not None:
        return existing
    with transaction.atomic():
        Organization.objects.select_for_update().filter(pk=org.pk).first()
        existing = sandbox_of(org)
        if existing is not None:
            return existing
        name = f"{org.name[: 100 - len(NAME_SUFFIX)]}{NAME_SUFFIX}"
        sandbox = None
        for attempt in range(4):
            slug = _slug_for(org, secrets.token_hex(3) if attempt else "")
            if Organization.objects.filter(slug=slug).exists():
                continue
            try:
                with transaction.atomic():
                    sandbox = Organization.objects.create(name=name, slug=slug, sandbox_of=org)
                break
            except IntegrityError:
                # Another request made this publisher's sandbox (or took the slug) meanwhile.
                existing = sandbox_of(org)
                if existing is not None:
                    return existing
        if sandbox is None:
            raise Conflict("Could not choose a free slug for the sandbox tenant; try again.", code="slug_taken")
        Workspace.objects.create(org=sandbox, name="Default", slug="default")
        audit_record(
            action="org.sandbox_created",
            org_id=org.pk,
            target=sandbox,
            changes={"sandbox": sandbox.pk, "name": sandbox.name, "slug": sandbox.slug},
        )
        audit_record(
            action="org.created",
            org_id=sandbox.pk,
            target=sandbox,
            changes={"name": sandbox.name, "slug": sandbox.slug, "sandbox_of": org.pk},
        )
    return sandbox

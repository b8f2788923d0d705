"""Every publisher gets a sandbox tenant when it creates its first extension
(``apps.orgs.services.sandbox.sandbox_org_ensure``). Publishers that already had extensions before
sandboxes existed get theirs here: "<name> sandbox", slug "<slug>-sandbox" (with a suffix when
taken), a Default workspace. Written with the historical models, as the service would write it;
the audit log is left alone (its hash chain is the audit app's to write)."""

import secrets

from django.db import migrations

NAME_SUFFIX = " sandbox"
SLUG_SUFFIX = "-sandbox"


def _free_slug(Organization, base: str) -> str:
    slug = f"{base[: 60 - len(SLUG_SUFFIX)].rstrip('-')}{SLUG_SUFFIX}"
    while Organization.objects.filter(slug=slug).exists():
        tail = f"{SLUG_SUFFIX}-{secrets.token_hex(3)}"
        slug = f"{base[: 60 - len(tail)].rstrip('-')}{tail}"
    return slug


def forwards(apps, schema_editor):
    Organization = apps.get_model("orgs", "Organization")
    Workspace = apps.get_model("orgs", "Workspace")
    Extension = apps.get_model("extensions", "Extension")
    publisher_ids = Extension.objects.values_list("org_id", flat=True).distinct()
    publishers = Organization.objects.filter(
        pk__in=publisher_ids, sandbox_of__isnull=True, sandbox__isnull=True
    ).order_by("pk")
    for org in publishers:
        sandbox = Organization.objects.create(
            name=f"{org.name[: 100 - len(NAME_SUFFIX)]}{NAME_SUFFIX}",
            slug=_free_slug(Organization, org.slug),
            sandbox_of=org,
        )
        Workspace.objects.create(org=sandbox, name="Default", slug="default")


class Migration(migrations.Migration):
    dependencies = [
        ("installs", "0001_initial"),
        ("orgs", "0005_organization_sandbox_of_and_more"),
        ("extensions", "0002_channelrelease"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]

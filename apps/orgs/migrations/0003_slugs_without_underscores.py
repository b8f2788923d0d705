"""Organisation slugs are the publisher part of extension ids (acme.order-tagger), which do not
allow underscores; earlier slugs could hold them. Replace each with a hyphen (adding a suffix if
that slug is taken) so every organisation can publish."""

from django.db import migrations


def forwards(apps, schema_editor):
    Organization = apps.get_model("orgs", "Organization")
    taken = set(Organization.objects.values_list("slug", flat=True))
    for org in Organization.objects.filter(slug__contains="_").order_by("pk"):
        base = org.slug.replace("_", "-").strip("-")[:56] or "org"
        slug, n = base, 1
        while slug in taken:
            n += 1
            slug = f"{base}-{n}"
        taken.add(slug)
        org.slug = slug
        org.save(update_fields=["slug"])


class Migration(migrations.Migration):
    dependencies = [("orgs", "0002_organization_is_platform_and_more")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]

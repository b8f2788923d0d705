"""The fixed storefront categories."""

from django.db import migrations

CATEGORIES = [
    ("orders", "Orders", "Order handling, tagging, routing and fulfilment."),
    ("shipping", "Shipping", "Carriers, labels, tracking and delivery."),
    ("marketing", "Marketing", "Campaigns, e-mail, loyalty and promotions."),
    ("analytics", "Analytics", "Reports, dashboards and insights."),
    ("productivity", "Productivity", "Automation and tools that save time."),
    ("security", "Security", "Access, compliance, fraud and risk."),
    ("finance", "Finance", "Invoices, payments, accounting and tax."),
    ("support", "Support", "Help desks, chat and customer service."),
    ("ai-tools", "AI tools", "Agents, assistants and AI-powered tools."),
]


def seed(apps, schema_editor):
    Category = apps.get_model("listings", "Category")
    for position, (slug, name, description) in enumerate(CATEGORIES):
        Category.objects.update_or_create(
            slug=slug, defaults={"name": name, "description": description, "position": position}
        )


def unseed(apps, schema_editor):
    apps.get_model("listings", "Category").objects.filter(slug__in=[c[0] for c in CATEGORIES]).delete()


class Migration(migrations.Migration):
    dependencies = [("listings", "0001_initial")]

    operations = [migrations.RunPython(seed, unseed)]

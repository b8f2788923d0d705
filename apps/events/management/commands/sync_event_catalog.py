from django.core.management.base import BaseCommand, CommandError

from apps.core.errors import PlazaError
from apps.events.catalog_sync import CatalogError, sync_catalog
from apps.orgs.models import Organization


class Command(BaseCommand):
    help = "Register the event types and schema versions in apps/events/catalog/ that the registry lacks."

    def handle(self, *args, **options):
        try:
            changes = sync_catalog(platform_org=Organization.objects.filter(is_platform=True).first())
        except (CatalogError, PlazaError) as exc:
            raise CommandError(str(getattr(exc, "message", exc))) from None
        for line in changes:
            self.stdout.write(line)
        self.stdout.write(f"event catalog in sync ({len(changes)} change{'s' if len(changes) != 1 else ''})")

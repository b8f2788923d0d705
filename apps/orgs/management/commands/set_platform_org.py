"""Mark one organisation as the platform organisation (the company running Plaza): its members
with the owner, admin or developer role act as platform staff."""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from apps.audit.services import audit_record
from apps.orgs.models import Organization


class Command(BaseCommand):
    help = "Make the organisation with this slug the platform organisation (staff)."

    def add_arguments(self, parser):
        parser.add_argument("slug")

    def handle(self, *args, slug: str, **options):
        org = Organization.objects.filter(slug=slug).first()
        if org is None:
            raise CommandError(f"No organisation with the slug {slug!r}.")
        with transaction.atomic():
            previous = Organization.objects.filter(is_platform=True).exclude(pk=org.pk).first()
            if previous is not None:
                previous.is_platform = False
                previous.save(update_fields=["is_platform"])
                audit_record(action="org.platform_unset", org_id=previous.pk, target=previous)
            if not org.is_platform:
                org.is_platform = True
                org.save(update_fields=["is_platform"])
                audit_record(action="org.platform_set", org_id=org.pk, target=org)
        self.stdout.write(f"{org.name} ({org.slug}) is the platform organisation.")

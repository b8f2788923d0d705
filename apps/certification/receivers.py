"""Certification listens to the extension registry (a lower layer): a submitted version gets a run."""

from django.dispatch import receiver

from apps.extensions.models import ExtensionVersion, VersionStatus
from apps.extensions.signals import version_status_changed


@receiver(version_status_changed, sender=ExtensionVersion, dispatch_uid="certification.run_on_submit")
def start_run_on_submit(sender, version, before, **kwargs):
    # If this is lost (the process stops right after the submit commits), run_sweep starts the run.
    if version.status == VersionStatus.SUBMITTED:
        from apps.certification.services import run_start_for_submitted

        run_start_for_submitted(version=version)

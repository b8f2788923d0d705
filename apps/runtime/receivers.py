"""The runtime listens to the extension registry (same layer, one direction: extensions never
imports runtime): a submitted version's modules are compiled before anything calls them."""

from django.dispatch import receiver

from apps.extensions.models import ExtensionVersion, VersionStatus
from apps.extensions.signals import version_status_changed


@receiver(version_status_changed, sender=ExtensionVersion, dispatch_uid="runtime.precompile_on_submit")
def precompile_on_submit(sender, version, before, **kwargs):
    if version.status == VersionStatus.SUBMITTED:
        from apps.runtime.tasks import precompile_version

        precompile_version.delay(version.pk)

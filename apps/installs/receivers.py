"""Signal receivers of the installs app."""

from django.dispatch import receiver

from apps.extensions.models import ChannelRelease
from apps.extensions.signals import channel_released
from apps.installs.models import Installation
from apps.installs.signals import installation_changed


@receiver(channel_released, sender=ChannelRelease, dispatch_uid="installs.apply_release")
def apply_release_on_promotion(sender, release, **kwargs):
    """A version was promoted: installations following that channel update or get it offered, in a
    task (a popular extension has many installations; the publisher's request does not wait)."""
    from apps.installs.tasks import apply_release

    apply_release.delay(release.pk)


@receiver(installation_changed, sender=Installation, dispatch_uid="installs.fulfil_requests")
def fulfil_requests_on_install(sender, installation, action, **kwargs):
    """Members who asked for an extension see their request answered when an admin installs it."""
    if action == "created":
        from apps.installs.services.controls import install_requests_fulfil

        install_requests_fulfil(installation=installation)

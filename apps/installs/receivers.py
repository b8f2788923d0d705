"""Signal receivers of the installs app."""

from django.dispatch import receiver

from apps.extensions.models import ChannelRelease
from apps.extensions.signals import channel_released


@receiver(channel_released, sender=ChannelRelease, dispatch_uid="installs.apply_release")
def apply_release_on_promotion(sender, release, **kwargs):
    """A version was promoted: installations following that channel update or get it offered, in a
    task (a popular extension has many installations; the publisher's request does not wait)."""
    from apps.installs.tasks import apply_release

    apply_release.delay(release.pk)

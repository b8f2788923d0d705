"""Celery tasks of the installs app: thin, they load a row id and call a service."""

from __future__ import annotations

from celery import shared_task

from apps.extensions.models import ChannelRelease


@shared_task(name="installs.apply_release", autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def apply_release(release_id: str) -> int:
    """Update (or offer the update to) every installation following the release's channel. Safe
    to deliver twice: an installation already on the version, or offered it, is left alone."""
    from apps.installs.services import channel_release_apply

    release = ChannelRelease.objects.filter(pk=release_id).first()
    if release is None:
        return 0
    return len(channel_release_apply(release=release))


@shared_task(name="installs.sweep_releases")
def sweep_releases() -> int:
    """Apply again the newest release of every (extension, channel) promoted in the last day, so
    a lost ``installs.apply_release`` task (a broker that dropped it, a worker killed mid-way) only
    delays updates. Idempotent: installations already on the version, or offered it, are left alone."""
    import datetime as dt

    from apps.core import clock
    from apps.installs.services import channel_release_apply

    since = clock.now() - dt.timedelta(days=1)
    newest: dict[tuple[str, str], ChannelRelease] = {}
    for release in ChannelRelease.objects.filter(promoted_at__gte=since).order_by("promoted_at", "id"):
        newest[(release.extension_id, release.channel)] = release
    return sum(len(channel_release_apply(release=release)) for release in newest.values())

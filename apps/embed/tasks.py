"""Celery tasks of the embed app."""

from __future__ import annotations

import datetime as dt

from celery import shared_task


@shared_task(name="embed.sweep_launches")
def sweep_launches() -> int:
    """Delete launches that expired more than a day ago (their audit entries stay)."""
    from apps.core import clock
    from apps.embed.models import Launch

    deleted, _ = Launch.objects.filter(expires_at__lt=clock.now() - dt.timedelta(days=1)).delete()
    return deleted

"""Platform tasks: e-mail delivery, and a diagnostic that proves delays are honoured, embedded or not."""

from __future__ import annotations

import smtplib
import time

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.core.mail import get_connection

from apps.core.mail import message_from_dict


@shared_task(bind=True, name="core.selftest_ping", max_retries=5)
def selftest_ping(self, key: str, fail_times: int = 1, retry_countdown: float = 2.0) -> int:
    """Record the wall-clock time of each attempt under ``key`` in the cache; fail (and retry after
    ``retry_countdown`` seconds) for the first ``fail_times`` attempts."""
    attempts = list(cache.get(key) or [])
    attempts.append(time.time())
    cache.set(key, attempts, timeout=600)
    if len(attempts) <= fail_times:
        raise self.retry(countdown=retry_countdown)
    return len(attempts)


@shared_task(
    name="core.send_email",
    autoretry_for=(smtplib.SMTPException, OSError),
    retry_backoff=30,
    retry_backoff_max=3600,
    retry_jitter=False,
    max_retries=8,
)
def send_email(message: dict) -> int:
    """Deliver one queued message; retried 30 s, 60 s, … up to an hour apart on mail-server errors."""
    connection = get_connection(settings.PLAZA_EMAIL_DELIVERY_BACKEND)
    return connection.send_messages([message_from_dict(message)])

"""Diagnostic tasks: prove that countdowns and retry delays are honoured, embedded or not."""

from __future__ import annotations

import time

from celery import shared_task
from django.core.cache import cache


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

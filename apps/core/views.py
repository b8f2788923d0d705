from __future__ import annotations

import logging
import time

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

log = logging.getLogger(__name__)


@require_GET
@never_cache
def healthz(request):
    """The process is up. Touches nothing else."""
    return JsonResponse({"status": "ok"})


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _check_cache() -> None:
    cache.set("plaza:readyz", "1", timeout=10)
    if cache.get("plaza:readyz") != "1":
        raise RuntimeError("cache did not return what was stored")


def _check_broker() -> None:
    from config.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)


@require_GET
@never_cache
def readyz(request):
    """200 only when every configured dependency answers; the body names each check."""
    checks = {"database": _check_database}
    if settings.REDIS_URL:
        checks["cache"] = _check_cache
    if settings.CELERY_BROKER_URL:
        checks["broker"] = _check_broker
    results, ok = {}, True
    for name, check in checks.items():
        started = time.perf_counter()
        try:
            check()
            results[name] = {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 1)}
        except Exception as exc:  # any failure of a dependency means "not ready"
            ok = False
            error = exc.__class__.__name__
            if settings.IS_PRODUCTION:
                # The probe is public: messages name internal hosts, ports and database users.
                log.warning("readyz: %s check failed: %s", name, exc)
            else:
                error += f": {str(exc)[:200]}"
            results[name] = {"ok": False, "error": error}
    return JsonResponse({"status": "ok" if ok else "unavailable", "checks": results}, status=200 if ok else 503)

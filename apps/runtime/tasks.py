from __future__ import annotations

import logging

from celery import shared_task

from apps.extensions.models import ExtensionVersion
from apps.runtime.services import version_precompile

logger = logging.getLogger(__name__)


@shared_task(name="runtime.precompile_version", autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def precompile_version(version_id: str) -> list[dict]:
    """Warm this worker's module cache with a submitted version's modules."""
    version = ExtensionVersion.objects.filter(pk=version_id).first()
    if version is None:
        return []
    report = version_precompile(version=version)
    for item in report:
        if item["error"]:
            logger.warning("module %s of %s does not compile: %s", item["module"], version, item["error"])
    return report

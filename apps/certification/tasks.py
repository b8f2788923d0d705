"""Celery tasks of certification: thin, they load a row id and call a service."""

from __future__ import annotations

from celery import shared_task

from apps.certification.services import run_advance, run_sweep


@shared_task(name="certification.advance", autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def advance_run(run_id: str) -> str:
    """Run the remaining checks of a certification run (safe to deliver twice: checks are leased)."""
    return run_advance(run_id=run_id)


@shared_task(name="certification.sweep")
def sweep() -> dict:
    """Resume runs whose task was lost or whose worker died; start runs for forgotten submissions."""
    return run_sweep()

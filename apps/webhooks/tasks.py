"""Celery tasks of webhook delivery: thin, they take ids and call a service.

All run with late acks and reject-on-worker-lost (settings): a killed worker's task goes back to
the broker. Nothing depends on that, though: messages and dispatch rows carry their own leases,
and ``webhooks.sweep`` (beat) finds whatever a lost task left behind.

Replay's tasks (``webhooks.replay_run``, ``webhooks.replay_sweep``) live with their service in
``services/replay.py``; importing them here registers them wherever this module is loaded
(Celery autodiscovers ``tasks`` modules).
"""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.core.cache import cache

from apps.webhooks.services import delivery, fanout, health
from apps.webhooks.services.replay import replay_run, replay_sweep_task  # noqa: F401  (registered with the worker)

_SUCCESSOR_KEY = "plaza:webhooks:deliver-successor"


@shared_task(name="webhooks.process_dispatch", acks_late=True, reject_on_worker_lost=True)
def process_dispatch(dispatch_id: str) -> int:
    """Fan out one accepted event (safe to run twice: the dispatch row is leased, messages unique)."""
    return fanout.dispatch_process(dispatch_id)


@shared_task(name="webhooks.deliver_due", acks_late=True, reject_on_worker_lost=True)
def deliver_due() -> dict:
    """Send due messages in batches for up to ``PLAZA_WEBHOOK_TASK_BUDGET_SECONDS``; hand over to a
    fresh task when messages are still due, and look again shortly when the next one is close
    (short waits only: long delays are the sweep's, never a broker countdown)."""
    report = delivery.deliver_due()
    wait = delivery.next_due_in()
    # One successor at a time, whoever schedules it: kicks must not multiply into chains.
    if (
        wait is not None
        and wait <= settings.PLAZA_WEBHOOK_BREAKER_PAUSE_SECONDS
        and (wait == 0 or cache.add(_SUCCESSOR_KEY, 1, timeout=max(1, int(wait))))
    ):
        deliver_due.apply_async(countdown=wait) if wait else deliver_due.delay()
    return report.as_dict()


@shared_task(name="webhooks.sweep")
def sweep() -> dict:
    """Beat: fan out dispatch rows whose task was lost, kick delivery when messages are due, and
    disable endpoints whose failure streak outlived ``PLAZA_WEBHOOK_DISABLE_AFTER_DAYS``."""
    dispatches = fanout.dispatches_due()
    for dispatch_id in dispatches:
        process_dispatch.delay(dispatch_id)
    due = delivery.next_due_in()
    if due == 0:
        deliver_due.delay()
    disabled = health.endpoints_stale_disable()
    return {"dispatches": len(dispatches), "kicked": due == 0, "disabled": disabled}

"""Running Celery tasks on one machine without a broker, with the same timing as a worker.

With ``CELERY_BROKER_URL`` set, :class:`PlazaTask` is an ordinary Celery task and a worker runs
it. Without one (the embedded default), ``apply_async`` hands the call to
:class:`EmbeddedExecutor`, which keeps a heap ordered by due time and runs each call when it is
due, on one daemon thread inside the web process. A countdown, an ``eta`` and a
``self.retry(countdown=…)`` therefore wait exactly as long as under a worker, unlike Celery's
eager mode, which runs retries at once.

The heap lives in memory: calls scheduled but not yet run are lost if the process stops, which
is the same promise a broker gives Plaza. Work that must not be lost is therefore never only a
task: it is a database row written with the change that causes it (the transactional outbox in
ARCHITECTURE.md, used by deliveries and certification runs as they arrive), a task only says
"go look at row X", and a periodic sweep (``CELERY_BEAT_SCHEDULE``, run by this executor too)
picks up rows whose task never ran.

In tests (``PLAZA_ENV=test``) the executor is *manual*: calls due now run inline in the caller's
thread, later ones wait until a test calls :meth:`EmbeddedExecutor.run_due` with a later time.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import heapq
import itertools
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field

from celery.contrib.django.task import DjangoTask
from celery.exceptions import Retry
from celery.result import EagerResult
from django.conf import settings
from django.db import close_old_connections

from apps.core import clock

log = logging.getLogger(__name__)
_LOOP_ERROR_PAUSE = 1.0  # seconds the thread waits after an error, so a persistent one cannot spin
_inside_embedded_run: contextvars.ContextVar[bool] = contextvars.ContextVar("plaza_embedded_run", default=False)


@dataclass(order=True)
class ScheduledCall:
    due: dt.datetime
    seq: int
    task_name: str = field(compare=False)
    args: tuple = field(compare=False, default=())
    kwargs: dict = field(compare=False, default_factory=dict)
    task_id: str = field(compare=False, default="")
    retries: int = field(compare=False, default=0)


class EmbeddedExecutor:
    def __init__(self, *, manual: bool):
        self.manual = manual
        self._heap: list[ScheduledCall] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._periodic_next: dict[str, dt.datetime] = {}

    # -- scheduling ---------------------------------------------------------------------------
    def submit(
        self,
        task_name: str,
        args=(),
        kwargs=None,
        *,
        due: dt.datetime | None = None,
        task_id: str | None = None,
        retries: int = 0,
    ) -> ScheduledCall:
        now = clock.now()
        call = ScheduledCall(
            due or now,
            next(self._seq),
            task_name,
            tuple(args or ()),
            dict(kwargs or {}),
            task_id or str(uuid.uuid4()),
            retries,
        )
        if self.manual and call.due <= now:
            self._run(call)
            return call
        with self._cond:
            heapq.heappush(self._heap, call)
            self._cond.notify()
        if not self.manual:
            self.start()
        return call

    def pending(self) -> list[ScheduledCall]:
        with self._cond:
            return sorted(self._heap)

    def clear(self) -> None:
        with self._cond:
            self._heap.clear()

    def run_due(self, now: dt.datetime | None = None) -> int:
        """Run every call due at ``now`` (default: the present); return how many ran."""
        ran = 0
        while True:
            with self._cond:
                moment = now or clock.now()
                if not self._heap or self._heap[0].due > moment:
                    return ran
                call = heapq.heappop(self._heap)
            self._run(call)
            ran += 1

    # -- the thread ----------------------------------------------------------------------------
    def start(self) -> None:
        with self._cond:
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(target=self._loop, name="plaza-embedded-tasks", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while True:
            try:
                self._schedule_periodic()
                with self._cond:
                    wait = 30.0
                    if self._heap:
                        wait = max(0.0, min(wait, (self._heap[0].due - clock.now()).total_seconds()))
                    if wait > 0:
                        self._cond.wait(timeout=wait)
                close_old_connections()
                self.run_due()
                close_old_connections()
            except Exception:
                # One bad call (an unknown task name, a broken beat entry, a lost database) must not
                # end the thread: nothing would restart it, and periodic sweeps would stop silently.
                log.exception("embedded task executor: error in the run loop")
                time.sleep(_LOOP_ERROR_PAUSE)

    def _schedule_periodic(self) -> None:
        """Run ``CELERY_BEAT_SCHEDULE`` entries whose schedule is a number of seconds or a timedelta
        (crontab entries need ``celery beat`` and are skipped here, with a warning)."""
        now = clock.now()
        for name, entry in getattr(settings, "CELERY_BEAT_SCHEDULE", {}).items():
            every = entry["schedule"]
            if isinstance(every, int | float):
                every = dt.timedelta(seconds=every)
            if not isinstance(every, dt.timedelta):
                if name not in self._periodic_next:
                    log.warning(
                        "periodic task %s has a %s schedule: run celery beat for it", name, type(every).__name__
                    )
                    self._periodic_next[name] = dt.datetime.max.replace(tzinfo=dt.UTC)
                continue
            due = self._periodic_next.setdefault(name, now + every)
            if due <= now:
                self._periodic_next[name] = now + every
                self.submit(entry["task"], entry.get("args", ()), entry.get("kwargs", {}))

    def _run(self, call: ScheduledCall) -> None:
        from config.celery import app

        if call.task_name not in app.tasks:
            # Celery imports the apps' tasks modules lazily (a worker does at start-up): the web
            # process may be asked for a periodic task whose module nothing has imported yet.
            app.loader.import_default_modules()
        task = app.tasks[call.task_name]
        token = _inside_embedded_run.set(True)
        try:
            result = task.apply(call.args, call.kwargs, task_id=call.task_id, retries=call.retries, throw=False)
            if result.state == "FAILURE":
                log.error(
                    "task %s[%s] failed: %r",
                    call.task_name,
                    call.task_id,
                    result.result,
                    extra={"traceback": result.traceback},
                )
        finally:
            _inside_embedded_run.reset(token)


executor = EmbeddedExecutor(manual=settings.IS_TEST)


class PlazaTask(DjangoTask):
    """Base class of every Plaza task: embedded scheduling when no broker is configured."""

    def apply_async(
        self, args=None, kwargs=None, task_id=None, producer=None, link=None, link_error=None, shadow=None, **options
    ):
        if not settings.PLAZA_TASKS_EMBEDDED:
            return super().apply_async(
                args,
                kwargs,
                task_id=task_id,
                producer=producer,
                link=link,
                link_error=link_error,
                shadow=shadow,
                **options,
            )
        call = executor.submit(
            self.name,
            args,
            kwargs,
            due=_due_from(options.get("eta") or options.get("countdown")),
            task_id=task_id,
            retries=options.get("retries", 0),
        )
        return EagerResult(call.task_id, None, "PENDING", name=self.name)

    def retry(
        self, args=None, kwargs=None, exc=None, throw=True, eta=None, countdown=None, max_retries=None, **options
    ):
        if not (settings.PLAZA_TASKS_EMBEDDED and _inside_embedded_run.get()):
            return super().retry(args, kwargs, exc, throw, eta, countdown, max_retries, **options)
        # Let Celery compute the next call (max_retries, default delay), then schedule it
        # ourselves instead of letting apply() re-run it at once.
        planned = super().retry(args, kwargs, exc, False, eta, countdown, max_retries, **options)
        sig = planned.sig
        executor.submit(
            self.name,
            sig.args,
            sig.kwargs,
            due=_due_from(planned.when),
            task_id=self.request.id,
            retries=sig.options.get("retries", self.request.retries + 1),
        )
        raise Retry(exc=exc, when=planned.when, is_eager=True, sig=None)


def _due_from(when) -> dt.datetime | None:
    """An ``eta`` (datetime or ISO string) or a countdown in seconds, as an aware due time."""
    if isinstance(when, str):
        when = dt.datetime.fromisoformat(when)
    if isinstance(when, dt.datetime):
        return when if when.tzinfo else when.replace(tzinfo=dt.UTC)
    if when:
        return clock.now() + dt.timedelta(seconds=float(when))
    return None

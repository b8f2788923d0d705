"""Delayed and retried work means the same on the embedded executor and under a real worker."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
import uuid

import pytest
from django.conf import settings
from django.core.cache import cache

from apps.core import clock
from apps.core.executor import executor
from apps.core.tasks import selftest_ping
from config.celery import app


def test_embedded_countdown_waits_until_due():
    key = f"ping-{uuid.uuid4()}"
    selftest_ping.apply_async(kwargs={"key": key, "fail_times": 0}, countdown=30)
    assert cache.get(key) is None
    assert executor.run_due(clock.now() + dt.timedelta(seconds=29)) == 0
    assert executor.run_due(clock.now() + dt.timedelta(seconds=31)) == 1
    assert len(cache.get(key)) == 1


def test_embedded_retry_keeps_its_countdown():
    # given a task that fails once and asks to be retried in 2 s
    key = f"ping-{uuid.uuid4()}"
    started = clock.now()
    selftest_ping.delay(key=key, fail_times=1, retry_countdown=2.0)
    # then it ran once, and the retry is scheduled 2 s later, not run at once (Celery's eager mode would)
    assert len(cache.get(key)) == 1
    [retry] = executor.pending()
    assert retry.retries == 1
    assert dt.timedelta(seconds=2) <= retry.due - started < dt.timedelta(seconds=3)
    assert executor.run_due(started + dt.timedelta(seconds=1)) == 0
    assert executor.run_due(started + dt.timedelta(seconds=3)) == 1
    assert len(cache.get(key)) == 2
    assert executor.pending() == []


def test_embedded_retries_stop_at_max_retries():
    key = f"ping-{uuid.uuid4()}"
    selftest_ping.delay(key=key, fail_times=100, retry_countdown=1.0)
    for _ in range(10):
        executor.run_due(clock.now() + dt.timedelta(hours=1))
    assert len(cache.get(key)) == selftest_ping.max_retries + 1
    assert executor.pending() == []


def test_embedded_thread_runs_delayed_work_in_real_time():
    from apps.core.executor import EmbeddedExecutor

    threaded = EmbeddedExecutor(manual=False)
    key = f"ping-{uuid.uuid4()}"
    threaded.submit(
        "core.selftest_ping", kwargs={"key": key, "fail_times": 0}, due=clock.now() + dt.timedelta(seconds=0.5)
    )
    time.sleep(0.2)
    assert cache.get(key) is None
    deadline = time.time() + 5
    while cache.get(key) is None and time.time() < deadline:
        time.sleep(0.05)
    assert cache.get(key) and len(cache.get(key)) == 1


@pytest.mark.services
@pytest.mark.skipif(
    not settings.CELERY_BROKER_URL or not settings.REDIS_URL,
    reason="needs CELERY_BROKER_URL and REDIS_URL (a real broker and a shared cache)",
)
def test_real_worker_honours_retry_countdown(tmp_path):
    queue = f"plaza-test-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "PLAZA_ENV": "development",
        "DEBUG": "false",
        "CACHE_KEY_PREFIX": settings.CACHES["default"]["KEY_PREFIX"],
        "PLAZA_DATA_DIR": str(tmp_path),
    }
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-P",
            "solo",
            "-Q",
            queue,
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "-l",
            "WARNING",
        ],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        key = f"ping-{uuid.uuid4()}"
        app.send_task("core.selftest_ping", kwargs={"key": key, "fail_times": 1, "retry_countdown": 2.0}, queue=queue)
        deadline = time.time() + 45
        while time.time() < deadline and len(cache.get(key) or []) < 2:
            time.sleep(0.2)
        attempts = cache.get(key) or []
        assert len(attempts) == 2, f"worker ran {len(attempts)} attempt(s)"
        assert 2.0 <= attempts[1] - attempts[0] < 10.0
    finally:
        worker.terminate()
        try:
            output = worker.communicate(timeout=10)[0].decode(errors="replace")
        except subprocess.TimeoutExpired:
            worker.kill()
            output = ""
        if worker.returncode not in (0, -15, None):
            print(output[-2000:])


def test_embedded_executor_runs_the_beat_schedule(settings, monkeypatch):
    from apps.core.executor import EmbeddedExecutor

    key = f"ping-{uuid.uuid4()}"
    settings.CELERY_BEAT_SCHEDULE = {
        "ping": {"task": "core.selftest_ping", "schedule": 60, "kwargs": {"key": key, "fail_times": 0}},
        "cron": {"task": "core.selftest_ping", "schedule": object(), "kwargs": {"key": key}},  # needs celery beat
    }
    beat = EmbeddedExecutor(manual=True)
    start = clock.now()
    beat._schedule_periodic()
    assert cache.get(key) is None  # first run one interval after start
    monkeypatch.setattr(clock, "now", lambda: start + dt.timedelta(seconds=61))
    beat._schedule_periodic()
    assert len(cache.get(key)) == 1
    beat._schedule_periodic()
    assert len(cache.get(key)) == 1  # not again until the next interval
    monkeypatch.setattr(clock, "now", lambda: start + dt.timedelta(seconds=122))
    beat._schedule_periodic()
    assert len(cache.get(key)) == 2


def test_a_fresh_process_runs_every_periodic_task_without_importing_task_modules_first(tmp_path):
    """The web process runs the beat schedule on the embedded executor before anything imported
    the apps' tasks modules (seen as 'NotRegistered: certification.sweep' under runserver)."""
    script = (
        "import django, os\n"
        "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'config.settings')\n"
        "django.setup()\n"
        "from django.conf import settings\n"
        "from config.celery import app\n"
        "from apps.core.executor import EmbeddedExecutor, ScheduledCall\n"
        "from apps.core import clock\n"
        "names = [entry['task'] for entry in settings.CELERY_BEAT_SCHEDULE.values()]\n"
        "assert not set(names) <= set(app.tasks), 'already imported: the test would prove nothing'\n"
        "executor = EmbeddedExecutor(manual=True)\n"
        "for i, name in enumerate(names):\n"
        "    executor._run(ScheduledCall(clock.now(), i, name))\n"
        "print('ran', len(names))\n"
    )
    env = {**os.environ, "PLAZA_ENV": "test", "DATABASE_URL": "", "PLAZA_DATA_DIR": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0 and "ran" in proc.stdout, proc.stderr[-2000:]
    assert "NotRegistered" not in proc.stderr

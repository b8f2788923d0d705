"""Acceptance (#8): kill -9 a real Celery worker (on Redis) mid-batch; every message is still
delivered.

The workers are real processes (``celery -A config worker``) sharing a database with this test:
a fresh SQLite file (or, when the suite runs on PostgreSQL, a fresh PostgreSQL database), migrated
and seeded through ``manage.py``. Worker A starts sending a batch to a slow receiver and is killed
with SIGKILL in the middle; its claimed messages keep their lease. Worker B (with beat) starts:
the sweep kicks delivery, the dead worker's leases expire, and B sends the rest. Skipped when
Redis is unreachable, unless ``PLAZA_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from urllib.parse import urlsplit

import pytest
from django.conf import settings

from tests.webhooks.engine_support import Receiver

pytestmark = pytest.mark.services

# A Redis database of this test's own: CI's suite uses 14 (broker) and 15 (cache), see .ci/run.
BROKER = os.environ.get("PLAZA_TEST_WORKER_BROKER", "redis://127.0.0.1:6379/13")
COUNT = 200
# Generous, for a loaded CI machine: worker start-up (Django + Celery) under load takes tens of seconds.
START_TIMEOUT = 240
DELIVERY_TIMEOUT = 360


def _redis_location(url: str) -> tuple[str, int, int]:
    parts = urlsplit(url)
    db = (parts.path or "/0").lstrip("/") or "0"
    return (parts.hostname or "127.0.0.1", parts.port or 6379, int(db) if db.isdigit() else 0)


def _redis_up() -> bool:
    host, port, _ = _redis_location(BROKER)
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _unavailable(reason: str) -> None:
    if os.environ.get("PLAZA_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason} (PLAZA_REQUIRE_SERVICES=1 requires it)")
    pytest.skip(reason)


def _require_redis() -> None:
    try:
        import redis  # noqa: F401
    except ImportError:
        _unavailable("the kill -9 test needs the redis package")
    if not _redis_up():
        _unavailable(f"the kill -9 test needs a Redis broker at {BROKER} (set PLAZA_TEST_WORKER_BROKER); none answers")
    # Never share a database with the suite's own broker or cache: this test empties its queues.
    mine = _redis_location(BROKER)
    for name in ("CELERY_BROKER_URL", "REDIS_URL"):
        other = os.environ.get(name, "")
        if other.startswith("redis") and _redis_location(other) == mine:
            _unavailable(f"PLAZA_TEST_WORKER_BROKER ({BROKER}) is the same Redis database as {name}; use another")


class Database:
    """A database of the test's own, on the suite's engine, that worker processes can open."""

    def __init__(self, tmp_path):
        self.pg = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
        if self.pg:
            source = settings.DATABASES["default"]
            self.name = f"plaza_wk_{uuid.uuid4().hex[:10]}"
            self.admin = dict(
                host=source["HOST"] or "127.0.0.1",
                port=source["PORT"] or 5432,
                user=source["USER"],
                password=source["PASSWORD"],
                dbname="postgres",
            )
            self._admin_sql(f'CREATE DATABASE "{self.name}"')
            auth = source["USER"] + (f":{source['PASSWORD']}" if source["PASSWORD"] else "")
            self.url = f"postgres://{auth}@{self.admin['host']}:{self.admin['port']}/{self.name}"
        else:
            self.path = tmp_path / "worker.sqlite3"
            self.url = f"sqlite:///{self.path}"

    def _admin_sql(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(**self.admin, autocommit=True) as conn:
            conn.execute(sql)

    def statuses(self) -> dict[str, int]:
        query = "SELECT status, COUNT(*) FROM webhooks_message GROUP BY status"
        if self.pg:
            import psycopg

            with psycopg.connect(**{**self.admin, "dbname": self.name}) as conn:
                return dict(conn.execute(query).fetchall())
        with sqlite3.connect(self.path, timeout=20) as conn:
            return dict(conn.execute(query).fetchall())

    def drop(self) -> None:
        if self.pg:
            self._admin_sql(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def _broker_cleanup(cache_prefix: str) -> None:
    """Delete what this test's workers left in its Redis database — the task queue, Kombu's
    bindings and unacked bookkeeping, and the cache keys under this run's prefix — and nothing
    else (never FLUSHDB: the database may be shared with something this test does not know)."""
    import redis

    client = redis.Redis.from_url(BROKER)
    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    # Kombu's Redis transport: the queue list, one list per priority step, the bindings, unacked.
    names = [queue, *(f"{queue}\x06\x16{p}" for p in range(10)), "unacked", "unacked_index", "unacked_mutex"]
    client.delete(*names)
    for pattern in ("_kombu.*", f"{cache_prefix}:*"):
        keys = list(client.scan_iter(match=pattern, count=500))
        if keys:
            client.delete(*keys)


SEED = """
from tests.webhooks.engine_support import bulk_messages, make_world
world = make_world(url="{url}")
print(len(bulk_messages(world, {count})))
"""


def _worker(env, tmp_path, name: str, *, beat: bool) -> subprocess.Popen:
    command = [sys.executable, "-m", "celery", "-A", "config", "worker", "-P", "solo", "-n", f"{name}@%h"]
    command += ["--without-heartbeat", "--without-gossip", "--without-mingle", "-l", "WARNING"]
    if beat:
        command += ["-B", "-s", str(tmp_path / f"beat-{name}")]
    log = open(tmp_path / f"{name}.log", "wb")  # noqa: SIM115 (closed with the process)
    return subprocess.Popen(command, cwd=settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT)


def _stop(process: subprocess.Popen | None) -> None:
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_killed_worker_loses_no_message(tmp_path):
    _require_redis()
    cache_prefix = f"plaza-worker-kill-{uuid.uuid4().hex[:8]}"
    _broker_cleanup(cache_prefix)  # tasks a previous, interrupted run left in the queue

    async def slow(seen, n):
        await asyncio.sleep(0.5)
        return (204, {}, b"")

    receiver = Receiver(behave=slow)
    database = Database(tmp_path)
    env = {
        **os.environ,
        "PLAZA_ENV": "development",
        "DEBUG": "false",
        "DATABASE_URL": database.url,
        "PLAZA_DATA_DIR": str(tmp_path),
        "CELERY_BROKER_URL": BROKER,
        "REDIS_URL": BROKER,
        "CACHE_KEY_PREFIX": cache_prefix,
        "CELERY_VISIBILITY_TIMEOUT": "5",
        "PLAZA_ALLOW_PRIVATE_NETWORKS": "true",
        "PLAZA_WEBHOOK_LEASE_SECONDS": "8",
        "PLAZA_WEBHOOK_SWEEP_SECONDS": "1",
        "PLAZA_WEBHOOK_BATCH_SIZE": "20",
        "PLAZA_WEBHOOK_CONCURRENCY": "10",
        "PLAZA_WEBHOOK_RATE_LIMIT": "0",
        "PLAZA_WEBHOOK_RETRY_SCHEDULE": "0,1,1,1,1,1,1,1",
        "PYTHONUNBUFFERED": "1",
    }
    worker_a = worker_b = None
    try:
        manage = [sys.executable, "manage.py"]
        subprocess.run(
            [*manage, "migrate", "--noinput"],
            cwd=settings.BASE_DIR,
            env=env,
            check=True,
            capture_output=True,
            timeout=600,
        )
        seeded = subprocess.run(
            [*manage, "shell", "-c", SEED.format(url=receiver.url, count=COUNT)],
            cwd=settings.BASE_DIR,
            env=env,
            check=True,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert seeded.stdout.strip().endswith(str(COUNT)), seeded.stdout + seeded.stderr

        # worker A takes a batch and is killed in the middle of it
        worker_a = _worker(env, tmp_path, "a", beat=False)
        call = [sys.executable, "-m", "celery", "-A", "config", "call", "webhooks.deliver_due"]
        subprocess.run(call, cwd=settings.BASE_DIR, env=env, check=True, capture_output=True, timeout=120)
        _wait(lambda: len(receiver.requests) >= 10, START_TIMEOUT, "worker A to start sending")
        os.kill(worker_a.pid, signal.SIGKILL)
        worker_a.wait(10)
        seen_before = len(set(receiver.ids()))
        assert seen_before < COUNT, "worker A finished before it was killed: nothing was tested"
        assert database.statuses().get("pending", 0) > 0

        # worker B (with beat: the sweep) delivers everything, the killed batch included
        worker_b = _worker(env, tmp_path, "b", beat=True)
        _wait(lambda: database.statuses() == {"succeeded": COUNT}, DELIVERY_TIMEOUT, "every message to be delivered")
    finally:
        _stop(worker_a)
        _stop(worker_b)
        receiver.close()
        for name in ("a", "b"):
            log = tmp_path / f"{name}.log"
            if log.exists() and log.stat().st_size:
                print(f"--- worker {name} ---\n" + log.read_text(errors="replace")[-3000:])
        database.drop()
        _broker_cleanup(cache_prefix)

    seen = receiver.ids()
    assert len(set(seen)) == COUNT  # every webhook-id arrived
    duplicates = len(seen) - COUNT
    # only the killed worker's batches (the one on the wire and the one claimed behind it) may
    # have been sent twice
    assert duplicates <= 2 * int(env["PLAZA_WEBHOOK_BATCH_SIZE"])
    print(f"\n{COUNT} messages delivered after kill -9; {seen_before} seen before the kill, {duplicates} resent")

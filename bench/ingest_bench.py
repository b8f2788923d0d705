"""Benchmark of event ingestion through the API, server side.

    .venv/bin/python bench/ingest_bench.py [--events N] [--database sqlite|postgres|all]

By default it runs twice, each in a fresh process: on the one-machine defaults
(``PLAZA_ENV=development``, SQLite in a temporary ``PLAZA_DATA_DIR``, tasks on the in-process
executor thread) and — when the local PostgreSQL answers on 127.0.0.1:5432 (trust auth) — on a
scratch database created there and dropped afterwards.

A tenant token (``events:write``) sends ``order.created`` events (the shipped catalog's schema: a
line-item array, patterns, formats) through Django's full stack in this process (middleware,
bearer auth, policy, body parsing, schema validation, the Event + EventDispatch transaction, the
``events_accepted`` signal and whatever its receivers enqueue), so the time measured is the
server's time per request:

- single: ``POST /api/v1/events``, one event per request;
- single + key: the same with an ``Idempotency-Key`` (one more row in the transaction);
- replay: the same key and body again (answered from the stored record);
- batch: ``POST /api/v1/events/batch`` with 100 events per request (events per second).

Baselines, in the same run and on the same database: ``GET /api/v1/orgs/{org}`` with the same
token — the least any authenticated API request costs here; a bare loop inserting the same rows
with the ORM (``Event`` + ``EventDispatch``, one transaction per event) — what storing costs without
HTTP, auth or validation; and the same rows bulk-inserted 100 per transaction, next to the batch
endpoint. Target: what ``POST /api/v1/events`` costs beyond storing its rows (its mean time minus
the bare loop's) is at most 3 × the mean time of the baseline GET — HTTP, auth, parsing and schema
validation together cost no more than three of the cheapest authenticated requests, whatever the
database's commit costs (PostgreSQL's synchronous commit dominates there). Every request must also
answer as expected. Exits 1 when a target fails, so it can gate.

The ``events_accepted`` receivers (webhook fan-out) are disconnected while the ingestion cases
run: in production the fan-out runs in Celery workers, while here the embedded executor would
run it on a thread of this process, competing for the same CPU and SQLite's write lock. One more
case, "API single + fan-out in-process", measures that one-machine default as shipped.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_OVERHEAD = 3.0  # what ingesting one event costs beyond storing its rows, in baseline GETs
BATCH = 100


def _setup_django(data_dir: str, database_url: str | None) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    os.environ["PLAZA_ENV"] = "development"
    os.environ["DEBUG"] = "false"
    os.environ["LOG_LEVEL"] = os.environ.get("LOG_LEVEL", "ERROR")
    os.environ["PLAZA_DATA_DIR"] = data_dir
    os.environ["ALLOWED_HOSTS"] = "testserver,localhost"
    for name in ("DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL", "PLAZA_MODULE_CACHE_DIR", "PLAZA_ARTIFACT_ROOT"):
        os.environ.pop(name, None)
    if database_url:
        os.environ["DATABASE_URL"] = database_url
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _postgres_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


def _scratch_postgres() -> tuple[str, callable]:
    import psycopg

    name = f"plaza_bench_{uuid.uuid4().hex[:8]}"
    admin = "postgresql://postgres@127.0.0.1:5432/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        from django.db import connections

        connections.close_all()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return f"postgresql://postgres@127.0.0.1:5432/{name}", drop


def _event(i: int) -> dict:
    return {
        "type": "order.created",
        "payload": {
            "order_id": f"ord_{i}",
            "customer_id": f"cus_{i % 97}",
            "currency": "EUR",
            "total": "59.90",
            "line_items": [
                {"sku": "TEE-BLK-M", "title": "Black tee, M", "quantity": 2, "unit_price": "29.95"},
                {"sku": "MUG-1", "title": "Mug", "quantity": 1, "unit_price": "0.00"},
            ],
            "note": "Leave at the door.",
            "created_at": "2026-11-01T09:30:00Z",
        },
    }


class Bench:
    def __init__(self):
        from apps.accounts.models import User
        from apps.events.catalog_sync import sync_catalog
        from apps.orgs.models import Role, ServiceAccount
        from apps.orgs.policy import Principal
        from apps.orgs.services import token_create
        from apps.orgs.services.organisations import org_create

        sync_catalog()
        robot = Principal(kind="user", user=None, mfa_verified=True)
        user = User.objects.create_user("admin@tenant.example", None)
        self.org = org_create(user=user, name="Bench Tenant", slug="bench-tenant")
        sa = ServiceAccount.objects.create(org=self.org, name="bench", role=Role.DEVELOPER)
        _, self.secret = token_create(
            principal=robot, service_account=sa, name="bench", scopes=["events:write", "org:read"], expires_in_days=None
        )
        from django.test import Client

        self.client = Client()

    def get(self, path: str) -> float:
        started = time.perf_counter()
        response = self.client.get(f"/api/v1/{path}", HTTP_AUTHORIZATION=f"Bearer {self.secret}")
        elapsed = time.perf_counter() - started
        if response.status_code != 200:
            raise SystemExit(f"GET {path} answered {response.status_code}: {response.content[:500]!r}")
        return elapsed

    def post(self, path: str, body: dict, expect: int, **headers) -> float:
        raw = json.dumps(body)
        started = time.perf_counter()
        response = self.client.post(
            f"/api/v1/{path}",
            raw,
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {self.secret}",
            **headers,
        )
        elapsed = time.perf_counter() - started
        if response.status_code != expect:
            raise SystemExit(f"POST {path} answered {response.status_code}: {response.content[:500]!r}")
        self.last = response
        return elapsed

    def run(self, n: int) -> dict[str, tuple[int, float, list[float]]]:
        """name -> (items, total seconds, per-request seconds)."""
        from apps.events.models import Event

        results = {}
        self._receivers(False)
        for i in range(20):  # warm-up: URL resolver, validators, caches
            self.post("events", _event(-i), 202)
            self.get(f"orgs/{self.org.pk}")
        times = [self.get(f"orgs/{self.org.pk}") for _ in range(n)]
        results["baseline GET /orgs/{org}"] = (n, sum(times), times)
        times = [self.post("events", _event(i), 202) for i in range(n)]
        results["API single"] = (n, sum(times), times)
        times = [self.post("events", _event(i), 202, HTTP_IDEMPOTENCY_KEY=f"k-{i}") for i in range(n)]
        results["API single + Idempotency-Key"] = (n, sum(times), times)
        times = []
        for i in range(n):
            times.append(self.post("events", _event(i), 202, HTTP_IDEMPOTENCY_KEY=f"k-{i}"))
            assert self.last["Idempotent-Replayed"] == "true"
        results["API replay (same key and body)"] = (n, sum(times), times)
        batches = max(1, n // BATCH)
        # as shipped on one machine: the receivers enqueue fan-out on the in-process executor
        self._receivers(True)
        times = [self.post("events", _event(i), 202) for i in range(n)]
        _drain_tasks()
        self._receivers(False)
        results["API single + fan-out in-process"] = (n, sum(times), times)
        times = []
        for b in range(batches):
            times.append(self.post("events/batch", {"events": [_event(b * BATCH + i) for i in range(BATCH)]}, 200))
            assert self.last.json()["accepted"] == BATCH
        results[f"API batch of {BATCH} (per event)"] = (batches * BATCH, sum(times), times)
        _drain_tasks()
        results["bare ORM loop (1 tx per event)"] = self._bare_loop(n)
        results[f"bare bulk insert ({BATCH} per tx)"] = self._bare_bulk(batches)
        expected = 20 + 3 * n + batches * BATCH * 2 + n
        stored = Event.objects.filter(org=self.org).count()
        if stored != expected:
            raise SystemExit(f"stored {stored} events, expected {expected}")
        return results

    def _receivers(self, connected: bool) -> None:
        from apps.events.signals import events_accepted

        if not hasattr(self, "_saved_receivers"):
            self._saved_receivers = list(events_accepted.receivers)
        with events_accepted.lock:
            events_accepted.receivers = list(self._saved_receivers) if connected else []
            events_accepted.sender_receivers_cache.clear()

    def _rows(self, i: int):
        from apps.core import clock
        from apps.core.ids import new_id
        from apps.events.models import Event, EventDispatch, EventSchema

        schema = self.schema if hasattr(self, "schema") else None
        if schema is None:
            schema = self.schema = EventSchema.objects.select_related("event_type").get(
                event_type__name="order.created", version=1
            )
        now = clock.now()
        event = Event(
            id=new_id("evt"),
            org=self.org,
            event_type=schema.event_type,
            schema_version=1,
            payload=_event(i)["payload"],
            occurred_at=now,
            received_at=now,
            source="tenant",
            source_id="tok_bench",
        )
        return event, EventDispatch(id=new_id("edp"), event=event, created_at=now)

    def _bare_loop(self, n: int):
        from django.db import transaction

        self._rows(0)
        times = []
        for i in range(n):
            started = time.perf_counter()
            event, dispatch = self._rows(i)
            with transaction.atomic():
                event.save(force_insert=True)
                dispatch.save(force_insert=True)
            times.append(time.perf_counter() - started)
        return n, sum(times), times

    def _bare_bulk(self, batches: int):
        from django.db import transaction

        from apps.events.models import Event, EventDispatch

        times = []
        for b in range(batches):
            started = time.perf_counter()
            rows = [self._rows(b * BATCH + i) for i in range(BATCH)]
            with transaction.atomic():
                Event.objects.bulk_create([e for e, _ in rows])
                EventDispatch.objects.bulk_create([d for _, d in rows])
            times.append(time.perf_counter() - started)
        return batches * BATCH, sum(times), times


def _drain_tasks(timeout: float = 60.0) -> None:
    """Wait for the in-process executor to finish what the requests queued (fan-out of the events)."""
    from apps.core import clock
    from apps.core.executor import executor

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(call.due <= clock.now() for call in executor.pending()):
        time.sleep(0.05)
    time.sleep(0.3)


def run_one(database: str, n: int) -> int:
    drop = None
    database_url = None
    if database == "postgres":
        database_url, drop = _scratch_postgres()
    try:
        with tempfile.TemporaryDirectory(prefix="plaza-ingest-bench-") as data_dir:
            _setup_django(data_dir, database_url)
            from django.db import connection

            results = Bench().run(n)
            vendor = connection.vendor
    finally:
        if drop is not None:
            drop()
    print(f"ingest_bench: {n} events per case on {vendor}, Python {platform.python_version()}")
    print(f"{'case':<36} {'items':>6} {'per s':>8} {'p50 ms':>8} {'p95 ms':>8}")
    rates = {}
    for name, (items, total, times) in results.items():
        ordered = sorted(times)
        p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
        rates[name] = items / total
        print(f"{name:<36} {items:>6} {rates[name]:>8.0f} {statistics.median(times) * 1000:>8.2f} {p95 * 1000:>8.2f}")
    bare, bulk = rates["bare ORM loop (1 tx per event)"], rates[f"bare bulk insert ({BATCH} per tx)"]
    print(f"API single = {rates['API single'] / bare:.2f} × the bare ORM loop")
    print(f"API batch = {rates[f'API batch of {BATCH} (per event)'] / bulk:.2f} × the bare bulk insert")
    mean = {name: 1 / rate for name, rate in rates.items()}
    overhead = (mean["API single"] - mean["bare ORM loop (1 tx per event)"]) / mean["baseline GET /orgs/{org}"]
    print(f"API single = {rates['API single'] / rates['baseline GET /orgs/{org}']:.2f} × the baseline GET (rate)")
    print(f"API single costs {overhead:.1f} baseline GETs beyond storing its rows")
    if overhead > TARGET_OVERHEAD:
        print(f"FAIL: ingestion overhead {overhead:.1f} > {TARGET_OVERHEAD:.0f} baseline GETs")
        return 1
    print(f"OK: ingestion overhead ≤ {TARGET_OVERHEAD:.0f} baseline GETs")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=500, help="requests per single-event case (and events batched)")
    parser.add_argument(
        "--database", choices=("sqlite", "postgres", "all"), default="all", help="all: SQLite, then PostgreSQL if up"
    )
    args = parser.parse_args()
    if args.database != "all":
        return run_one(args.database, args.events)
    databases = ["sqlite"] + (["postgres"] if _postgres_up() else [])
    if len(databases) == 1:
        print("(PostgreSQL is not answering on 127.0.0.1:5432: SQLite only)")
    status = 0
    for database in databases:  # a fresh process each: Django's settings are fixed at setup
        command = [sys.executable, __file__, "--database", database, "--events", str(args.events)]
        status |= subprocess.call(command)
        print()
    return status


if __name__ == "__main__":
    raise SystemExit(main())

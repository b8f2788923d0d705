"""Benchmark of webhook delivery: deliveries per second with one worker process, against a bare
aiohttp loop sending the same requests in the same run.

    .venv/bin/python bench/webhooks_bench.py [--messages N] [--engine sqlite|postgres|all]

The receiver is a minimal aiohttp server in a separate process on 127.0.0.1 answering 204 at once.

- **Plaza**: ``N`` pending messages (bulk-created) are delivered by the real engine in this one
  process — ``apps.webhooks.services.delivery.deliver_due``: claim a batch under a lease, sign each
  message (Standard Webhooks, HMAC-SHA256), send the batch concurrently over the process's one
  ``ClientSession`` through the SSRF-guarded resolver, record every attempt and outcome; batches are
  pipelined (the next one is claimed and the last one recorded while one is on the wire).
- **Bare**: the same ``N`` requests (same URL, body size and header set, signatures precomputed)
  sent by a plain ``aiohttp`` loop with the same concurrency and no database.

The two are measured alternately for ``--rounds`` rounds (default 3) and the best round of each
counts, so a burst of load from elsewhere on the machine does not decide the ratio.

Target: Plaza ≥ 0.5 × bare. By default it runs on SQLite (a fresh file) and, when the local
PostgreSQL answers, again on a scratch PostgreSQL database (each in a child process: Django is set
up once per process) — on ``DATABASE_URL``'s server when it names a PostgreSQL database (the scratch
database is made beside it; the named one is not touched), else on 127.0.0.1:5432. Exits 1 when a
run misses the target.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
TARGET_RATIO = 0.5


def _pg_admin_url() -> str:
    """The PostgreSQL server to make a scratch database on: ``DATABASE_URL``'s when it names one
    (its maintenance database ``postgres``), else the local server."""
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://")):
        parts = urlsplit(url)
        return urlunsplit(("postgresql", parts.netloc, "/postgres", "", ""))
    return "postgresql://postgres@127.0.0.1:5432/postgres"


PG_ADMIN = _pg_admin_url()

RECEIVER = r"""
import asyncio, sys
from aiohttp import web

async def handle(request):
    await request.read()
    return web.Response(status=204)

async def main():
    app = web.Application()
    app.router.add_post("/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    print(site._server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


def start_receiver() -> tuple[subprocess.Popen, int]:
    process = subprocess.Popen([sys.executable, "-c", RECEIVER], stdout=subprocess.PIPE, text=True)
    port = int(process.stdout.readline())
    return process, port


def postgres_available() -> bool:
    parts = urlsplit(PG_ADMIN)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5432), timeout=1):
            pass
        import psycopg

        with psycopg.connect(PG_ADMIN, connect_timeout=2):
            return True
    except Exception:
        return False


def _setup_django(data_dir: str, database_url: str | None) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    os.environ["PLAZA_ENV"] = "development"
    os.environ["DEBUG"] = "false"
    os.environ["LOG_LEVEL"] = os.environ.get("LOG_LEVEL", "WARNING")
    os.environ["PLAZA_DATA_DIR"] = data_dir
    os.environ["PLAZA_ALLOW_PRIVATE_NETWORKS"] = "true"  # the receiver is on loopback
    os.environ["PLAZA_WEBHOOK_RATE_LIMIT"] = "0"  # measure the engine, not the limiter
    for name in ("DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL"):
        os.environ.pop(name, None)
    if database_url:
        os.environ["DATABASE_URL"] = database_url
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


async def bare_loop(url: str, requests: list[tuple[dict, bytes]], concurrency: int) -> float:
    import aiohttp

    limit = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def one(headers, body):
            async with limit, session.post(url, data=body, headers=headers) as response:
                await response.read()
                assert response.status == 204

        # warm the connection pool like the engine's warm-up batch does
        await asyncio.gather(*(one(h, b) for h, b in requests[:concurrency]))
        started = time.perf_counter()
        await asyncio.gather(*(one(h, b) for h, b in requests))
        return time.perf_counter() - started


def run_one(engine: str, messages: int, rounds: int) -> dict:
    drop = None
    database_url = None
    if engine == "postgres":
        import psycopg

        name = f"plaza_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        database_url = urlunsplit(urlsplit(PG_ADMIN)._replace(path=f"/{name}"))

        def drop() -> None:
            from django.db import connections

            connections.close_all()
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    receiver, port = start_receiver()
    try:
        with tempfile.TemporaryDirectory(prefix="plaza-webhooks-bench-") as data_dir:
            _setup_django(data_dir, database_url)
            return _measure(engine, port, messages, rounds)
    finally:
        receiver.terminate()
        receiver.wait(5)
        if drop is not None:
            drop()


def _measure(engine: str, port: int, messages: int, rounds: int) -> dict:
    from django.conf import settings

    from apps.webhooks import signing
    from apps.webhooks.models import Message, MessageStatus
    from apps.webhooks.services import delivery
    from tests.webhooks.engine_support import bulk_messages, make_world

    url = f"http://127.0.0.1:{port}/hook"
    world = make_world(url=url)
    # warm-up: the engine's session, connections, caches
    bulk_messages(world, settings.PLAZA_WEBHOOK_BATCH_SIZE)
    delivery.deliver_due(budget_seconds=60)

    plaza_best = bare_best = float("inf")
    for _ in range(rounds):  # alternated, best of each: a busy machine slows both sides alike
        ids = bulk_messages(world, messages)
        started = time.perf_counter()
        while True:
            report = delivery.deliver_due(budget_seconds=600)
            if report.claimed == 0:
                break
        plaza_best = min(plaza_best, time.perf_counter() - started)
        delivered = Message.objects.filter(pk__in=ids, status=MessageStatus.SUCCEEDED).count()
        assert delivered == messages, f"only {delivered} of {messages} delivered"

        bodies = dict(Message.objects.filter(pk__in=ids).values_list("pk", "body"))
        ts = int(time.time())
        requests = []
        for msg_id in ids:
            body = bodies[msg_id].encode()
            headers = {"content-type": "application/json", "user-agent": "bench"}
            headers.update(signing.headers_for([world.secret], msg_id, body, timestamp=ts))
            requests.append((headers, body))
        bare_best = min(bare_best, asyncio.run(bare_loop(url, requests, settings.PLAZA_WEBHOOK_CONCURRENCY)))
    plaza_rate = messages / plaza_best
    bare_rate = messages / bare_best
    return {
        "engine": engine,
        "messages": messages,
        "batch": settings.PLAZA_WEBHOOK_BATCH_SIZE,
        "concurrency": settings.PLAZA_WEBHOOK_CONCURRENCY,
        "plaza_per_second": round(plaza_rate),
        "bare_per_second": round(bare_rate),
        "ratio": round(plaza_rate / bare_rate, 2),
        "rounds": rounds,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3, help="alternated rounds; the best of each side counts")
    parser.add_argument("--engine", choices=["sqlite", "postgres", "all"], default="all")
    parser.add_argument("--json", action="store_true", help="print one JSON result (used for the child runs)")
    args = parser.parse_args()

    if args.engine != "all":
        result = run_one(args.engine, args.messages, args.rounds)
        print(json.dumps(result) if args.json else result)
        return 0 if result["ratio"] >= TARGET_RATIO else 1

    engines = ["sqlite"] + (["postgres"] if postgres_available() else [])
    print(f"webhooks bench: {args.messages} messages per run, {platform.python_version()}, {os.cpu_count()} CPU(s)")
    failed = False
    for engine in engines:
        child = subprocess.run(
            [sys.executable, __file__, "--engine", engine, "--messages", str(args.messages)]
            + ["--rounds", str(args.rounds), "--json"],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        lines = [line for line in child.stdout.splitlines() if line.startswith("{")]
        if not lines:
            print(f"{engine}: failed\n{child.stdout[-2000:]}\n{child.stderr[-3000:]}")
            failed = True
            continue
        r = json.loads(lines[-1])
        verdict = "ok" if r["ratio"] >= TARGET_RATIO else f"BELOW TARGET {TARGET_RATIO}"
        print(
            f"{engine:9} plaza {r['plaza_per_second']:>6}/s   bare aiohttp {r['bare_per_second']:>6}/s   "
            f"ratio {r['ratio']:.2f}  ({verdict}; batch {r['batch']}, concurrency {r['concurrency']})"
        )
        failed = failed or r["ratio"] < TARGET_RATIO
    if "postgres" not in engines:
        print(f"postgres: skipped (no PostgreSQL at {urlsplit(PG_ADMIN).netloc})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

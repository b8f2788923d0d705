"""Benchmark of the installation lifecycle through the API, server side.

    .venv/bin/python bench/installs_bench.py [--customers N] [--postgres]

One process on the one-machine defaults (``PLAZA_ENV=development``, SQLite in a temporary
``PLAZA_DATA_DIR``, tasks on the in-process executor thread), or with ``--postgres`` on a scratch
database created on the local PostgreSQL (127.0.0.1:5432, trust auth) and dropped afterwards.

A publisher releases ``order-tagger`` 1.0.0 (the AssemblyScript module of pdk/assemblyscript) to
the stable channel; ``N`` customer organisations each hold an admin token. Every request goes
through Django's full stack in this process (middleware, bearer auth, policy, services, audit), so
the time measured is the server's time for the request:

- install: ``POST /orgs/{org}/installations`` with consent to exactly the version's scopes and a
  configuration (one transaction: installation, grants, config, history, audit);
- auto-update: promoting 1.1.0 to stable updates every installation that follows it (the
  ``channel_released`` receiver's task), timed from the promotion until the last one runs 1.1.0
  and reported per installation;
- rollback: ``POST /orgs/{org}/installations/{id}/rollback`` back to 1.0.0;
- uninstall: ``DELETE /orgs/{org}/installations/{id}`` with its cleanup report.

Baseline, in the same run: ``GET /orgs/{org}`` with the same token — the least any authenticated
API request costs here. Targets: install p95 < 1 s and rollback p95 < 1 s (and every request
answers as expected). Exits 1 when a target fails, so it can gate.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_SECONDS = 1.0
SCOPES = ["events:read:order.created", "kv:write"]
CONFIG_SCHEMA = {
    "type": "object",
    "properties": {
        "tag_prefix": {"type": "string", "default": "auto-", "maxLength": 20},
        "threshold": {"type": "integer", "minimum": 0, "maximum": 1000, "default": 10},
        "api_key": {"type": "string", "writeOnly": True},
    },
    "required": ["tag_prefix"],
}


def _setup_django(data_dir: str, database_url: str | None) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    os.environ["PLAZA_ENV"] = "development"
    os.environ["DEBUG"] = "false"
    os.environ["LOG_LEVEL"] = os.environ.get("LOG_LEVEL", "WARNING")
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


class Bench:
    def __init__(self, customers: int):
        import base64

        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from django.conf import settings

        from apps.accounts.models import User
        from apps.events.catalog_sync import sync_catalog
        from apps.extensions import services
        from apps.extensions.packages import build_package
        from apps.extensions.signing import public_key_raw, sign_package
        from apps.orgs.models import Role, ServiceAccount
        from apps.orgs.policy import SCOPES as ALL_SCOPES
        from apps.orgs.policy import Principal
        from apps.orgs.services import token_create
        from apps.orgs.services.organisations import org_create

        sync_catalog()
        self.robot = Principal(kind="user", user=None, mfa_verified=True)
        owner = User.objects.create_user("publisher@bench.example", None)
        self.publisher = org_create(user=owner, name="Bench Publisher", slug="bench-publisher")
        private = Ed25519PrivateKey.generate()
        key = services.signing_key_register(
            principal=self.robot,
            org=self.publisher,
            name="bench",
            public_key=base64.b64encode(public_key_raw(private)).decode(),
        )
        self.extension = services.extension_create(principal=self.robot, org=self.publisher, name="order-tagger")
        module = (Path(settings.BASE_DIR) / "pdk" / "assemblyscript" / "build" / "order_tagger.wasm").read_bytes()
        self.versions = {}
        for number in ("1.0.0", "1.1.0"):
            manifest = {
                "manifest_version": 1,
                "id": self.extension.key,
                "version": number,
                "name": "Order Tagger",
                "summary": "Tags each new order by what is in it.",
                "platform": {"api": "^1.0"},
                "scopes": SCOPES,
                "modules": {"main": "modules/main.wasm"},
                "hooks": [{"event": "order.created", "module": "main", "export": "on_order_created"}],
                "config_schema": CONFIG_SCHEMA,
            }
            data = build_package({"modules/main.wasm": module}, manifest=manifest)
            version = services.version_upload(
                principal=self.robot,
                extension=self.extension,
                data=data,
                signature=sign_package(private, hashlib.sha256(data).hexdigest()),
                key_id=key.pk,
            )
            version = services.version_submit(principal=self.robot, version=version)
            deadline = time.monotonic() + 60
            while version.status in ("submitted", "certifying") and time.monotonic() < deadline:
                time.sleep(0.1)  # certification runs on the in-process executor thread
                version.refresh_from_db()
            if version.status != "certified":
                raise SystemExit(f"{number} was not certified: {version.status} {version.status_reason}")
            self.versions[number] = version
        services.version_promote(principal=self.robot, version=self.versions["1.0.0"], channel="stable")
        self.customers = []
        for i in range(customers):
            user = User.objects.create_user(f"admin{i}@customer{i}.example", None)
            org = org_create(user=user, name=f"Customer {i}", slug=f"customer-{i}")
            sa = ServiceAccount.objects.create(org=org, name="bench", role=Role.ADMIN)
            _, secret = token_create(
                principal=self.robot, service_account=sa, name="bench", scopes=sorted(ALL_SCOPES), expires_in_days=None
            )
            self.customers.append((org, secret))

    def request(self, method: str, path: str, secret: str, body=None, expect: int = 200) -> float:
        from django.test import Client

        client = Client()
        kwargs = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
        if body is not None:
            kwargs.update(data=body, content_type="application/json")
        started = time.perf_counter()
        response = getattr(client, method.lower())(f"/api/v1/{path}", **kwargs)
        elapsed = time.perf_counter() - started
        if response.status_code != expect:
            raise SystemExit(f"{method} {path} answered {response.status_code}: {response.content[:500]!r}")
        self.last = response
        return elapsed

    def run(self) -> dict[str, list[float]]:
        from apps.extensions import services
        from apps.installs.models import Installation

        times: dict[str, list[float]] = {"baseline GET /orgs/{org}": [], "install": [], "rollback": [], "uninstall": []}
        installations = []
        org, secret = self.customers[0]
        self.request("GET", f"orgs/{org.pk}", secret)  # warm-up: URL resolver, OpenAPI models, caches
        for org, secret in self.customers:
            times["baseline GET /orgs/{org}"].append(self.request("GET", f"orgs/{org.pk}", secret))
        for org, secret in self.customers:
            body = {
                "extension_id": self.extension.pk,
                "granted_scopes": SCOPES,
                "config": {"tag_prefix": "vip-", "api_key": "s3cret"},
            }
            times["install"].append(self.request("POST", f"orgs/{org.pk}/installations", secret, body, expect=201))
            installations.append(self.last.json()["id"])
        _drain_tasks()
        # Promotion → the channel_released receiver → a task that updates every installation
        # following stable: timed from the promotion until the last installation runs 1.1.0.
        started = time.perf_counter()
        services.version_promote(principal=self.robot, version=self.versions["1.1.0"], channel="stable")
        deadline = started + 60
        updated = 0
        while time.perf_counter() < deadline:
            updated = Installation.objects.filter(pk__in=installations, version=self.versions["1.1.0"]).count()
            if updated == len(installations):
                break
            time.sleep(0.01)
        batch = time.perf_counter() - started
        if updated != len(installations):
            raise SystemExit(f"auto-update reached {updated} of {len(installations)} installations")
        times["auto-update (promote→all, per inst.)"] = [batch / len(installations)]
        _drain_tasks()
        for (org, secret), installation_id in zip(self.customers, installations, strict=True):
            body = {"version_id": self.versions["1.0.0"].pk}
            times["rollback"].append(
                self.request("POST", f"orgs/{org.pk}/installations/{installation_id}/rollback", secret, body)
            )
        for (org, secret), installation_id in zip(self.customers, installations, strict=True):
            times["uninstall"].append(self.request("DELETE", f"orgs/{org.pk}/installations/{installation_id}", secret))
            if not self.last.json().get("verified"):
                raise SystemExit(f"the cleanup report of {installation_id} is not verified: {self.last.json()}")
        return times


def _drain_tasks(timeout: float = 60.0) -> None:
    """Wait for the in-process executor to finish what the requests queued (precompiles, mails)."""
    from apps.core import clock
    from apps.core.executor import executor

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(call.due <= clock.now() for call in executor.pending()):
        time.sleep(0.05)
    time.sleep(0.3)  # the call taken off the queue last may still be running


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=30, help="customer organisations, one installation each")
    parser.add_argument("--postgres", action="store_true", help="run on a scratch PostgreSQL database")
    args = parser.parse_args()
    drop = None
    database_url = None
    if args.postgres:
        database_url, drop = _scratch_postgres()
    try:
        with tempfile.TemporaryDirectory(prefix="plaza-installs-bench-") as data_dir:
            _setup_django(data_dir, database_url)
            from django.db import connection

            bench = Bench(args.customers)
            times = bench.run()
            vendor = connection.vendor
    finally:
        if drop is not None:
            drop()
    print(f"installs_bench: {args.customers} customers on {vendor}, Python {platform.python_version()}")
    print(f"{'operation':<38} {'n':>4} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for name, values in times.items():
        ordered = sorted(values)
        p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
        print(f"{name:<38} {len(values):>4} {_ms(statistics.median(values))} {_ms(p95)} {_ms(max(values))}")
    failed = []
    for name in ("install", "rollback"):
        ordered = sorted(times[name])
        p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
        if p95 >= TARGET_SECONDS:
            failed.append(f"{name} p95 {p95 * 1000:.0f} ms ≥ {TARGET_SECONDS * 1000:.0f} ms")
    baseline = statistics.median(times["baseline GET /orgs/{org}"])
    for name in ("install", "rollback", "uninstall"):
        print(f"{name} p50 = {statistics.median(times[name]) / baseline:.1f} × the baseline request")
    if failed:
        print("FAIL: " + "; ".join(failed))
        return 1
    print(f"OK: install and rollback p95 under {TARGET_SECONDS * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

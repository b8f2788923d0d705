"""A certification run survives a worker that dies in the middle of a check (ARCHITECTURE.md: "a
killed worker delays work; it never loses it").

A real Celery worker on the real broker runs the run; the test SIGKILLs it (the whole process
group, so nothing can say goodbye) while it is inside a slow check, then starts another worker.
Recovery comes the way it does in production: the task was acked late, so the broker hands the
message out again once its visibility timeout has passed, and the new worker takes the slow check
over because its lease has expired. Every check then runs to completion exactly once: the ones
finished before the crash are not run again, and the interrupted one is started twice and
completed once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings as django_settings
from django.db import connection

from apps.certification import services as certification_services
from apps.certification.models import CHECK_DONE, CertificationRun, CheckStatus, RunStatus
from apps.certification.tasks import advance_run
from apps.extensions import services as extension_services
from apps.extensions.models import VersionStatus
from tests.certification.conftest import ROBOT, clean_files, clean_manifest, upload
from tests.certification.slow_check import LOG_ENV, SECONDS_ENV
from tests.extensions.conftest import event_catalog, publisher  # noqa: F401  (fixtures)

_ON_POSTGRES = connection.vendor == "postgresql"

pytestmark = [
    pytest.mark.services,
    pytest.mark.skipif(
        not django_settings.CELERY_BROKER_URL or not _ON_POSTGRES,
        reason="needs CELERY_BROKER_URL and PostgreSQL (a real worker process must see the test's rows)",
    ),
]

BEFORE = [
    "apps.certification.checks.manifest.ManifestCheck",
    "apps.certification.checks.signature.SignatureCheck",
    "apps.certification.checks.package.PackageCheck",
]
SLOW = "tests.certification.slow_check.SlowCheck"
AFTER = ["apps.certification.checks.smoke.SmokeCheck"]
CHECKS = [*BEFORE, SLOW, *AFTER]
SLOW_SECONDS = 3
# Longer than the slow check (a live worker keeps its lease), short enough for a quick takeover.
LEASE_SECONDS = 4
# How long the broker waits for an ack before it hands a message out again (Redis transport).
VISIBILITY_SECONDS = 4


def _test_database_url() -> str:
    """The URL of the database this test writes to (under xdist e.g. ``test_test_gw0``)."""
    db = connection.settings_dict
    user = quote(db.get("USER") or "", safe="")
    password = quote(db.get("PASSWORD") or "", safe="")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}{port}/{db['NAME']}"


class Workers:
    """Celery workers started as their own process groups, each logging to a file."""

    def __init__(self, tmp_path: Path, queue: str, env: dict):
        self.tmp_path, self.queue, self.env = tmp_path, queue, env
        self.procs: list[subprocess.Popen] = []

    def start(self) -> subprocess.Popen:
        n = len(self.procs) + 1
        log = open(self.tmp_path / f"worker{n}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-P",
                "prefork",
                "-c",
                "1",
                "-Q",
                self.queue,
                "-n",
                f"crash{n}-{self.queue}@%h",
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
                "-l",
                "INFO",
            ],  # fmt: skip
            cwd=django_settings.BASE_DIR,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the pool child dies with it
        )
        log.close()
        self.procs.append(proc)
        return proc

    @staticmethod
    def kill(proc: subprocess.Popen) -> None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)

    def kill_all(self) -> None:
        for proc in self.procs:
            self.kill(proc)

    def output(self) -> str:
        return "\n".join(
            f"--- worker {n}\n" + (self.tmp_path / f"worker{n}.log").read_text(errors="replace")[-4000:]
            for n in range(1, len(self.procs) + 1)
        )


def _wait_for(condition, *, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.mark.django_db(transaction=True)
def test_run_completes_after_its_worker_is_killed_mid_check(publisher, settings, tmp_path, monkeypatch):  # noqa: F811
    from config.celery import app

    # given a run created in this process, whose task goes to real workers only
    settings.PLAZA_CERTIFICATION_CHECKS = CHECKS
    monkeypatch.setattr(certification_services, "_enqueue", lambda run_id: None)
    starts = tmp_path / "slow-starts.log"
    queue = f"plaza-crash-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "PLAZA_ENV": "development",
        "DEBUG": "false",
        "DATABASE_URL": _test_database_url(),
        "PLAZA_DATA_DIR": str(tmp_path / "data"),
        "PLAZA_ARTIFACT_ROOT": str(settings.STORAGES["artifacts"]["OPTIONS"]["location"]),
        "PLAZA_MODULE_CACHE_DIR": str(tmp_path / "modules"),
        "PLAZA_CERTIFICATION_CHECKS": ",".join(CHECKS),
        "PLAZA_CERTIFICATION_LEASE_SECONDS": str(LEASE_SECONDS),
        "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_SECONDS),
        "CACHE_KEY_PREFIX": settings.CACHES["default"].get("KEY_PREFIX", ""),
        LOG_ENV: str(starts),
        SECONDS_ENV: str(SLOW_SECONDS),
    }
    version = upload(publisher, clean_manifest(), clean_files())
    extension_services.version_submit(principal=ROBOT, version=version)
    run = CertificationRun.objects.get(version=version)
    assert [c.check_id for c in run.checks.all()] == ["manifest", "signature", "package", "slow", "smoke"]

    workers = Workers(tmp_path, queue, env)
    try:
        # when the first worker is killed while it is inside the slow check
        first = workers.start()
        app.send_task("certification.advance", args=[run.pk], queue=queue)
        _wait_for(lambda: starts.exists() and starts.read_text().strip(), timeout=30, what="the slow check to start")
        Workers.kill(first)

        # then the run is stuck half-way: the checks before are done, the slow one holds a lease
        run.refresh_from_db()
        assert run.status == RunStatus.RUNNING
        rows = {c.check_id: c for c in run.checks.all()}
        assert {k: rows[k].status for k in rows} == {
            "manifest": CheckStatus.PASSED,
            "signature": CheckStatus.PASSED,
            "package": CheckStatus.PASSED,
            "slow": CheckStatus.RUNNING,
            "smoke": CheckStatus.PENDING,
        }
        assert rows["slow"].attempts == 1 and rows["slow"].lease_expires_at is not None

        # when another worker starts once the lease and the message's visibility timeout have passed
        # (a starting worker restores unacked messages older than the visibility timeout)
        slow_started = rows["slow"].started_at.timestamp()  # after worker 1 received the message
        ready_at = max(rows["slow"].lease_expires_at.timestamp(), slow_started + VISIBILITY_SECONDS) + 0.5
        time.sleep(max(0.0, ready_at - time.time()))
        restarted_at = time.monotonic()
        workers.start()

        # then the redelivered task takes the slow check over and finishes the run
        recovered_by = "redelivery"
        try:
            _wait_for(lambda: len(starts.read_text().splitlines()) >= 2, timeout=15, what="the redelivered task")
        except AssertionError:
            # The broker's restore can be skipped while another consumer holds its mutex; then the
            # periodic sweep is the backstop. Let run_sweep decide, and send its task to this queue.
            recovered_by = "sweep"
            swept = []
            monkeypatch.setattr(advance_run, "delay", lambda run_id: swept.append(run_id))
            certification_services.run_sweep()
            assert run.pk in swept
            app.send_task("certification.advance", args=[run.pk], queue=queue)

        def finished():
            run.refresh_from_db()
            return run.status not in (RunStatus.QUEUED, RunStatus.RUNNING)

        _wait_for(finished, timeout=30, what="the run to finish on the second worker")
        recovered_in = time.monotonic() - restarted_at
    except BaseException:
        workers.kill_all()
        print(workers.output())
        raise
    workers.kill_all()

    run.refresh_from_db()
    report = {c.check_id: (c.status, c.summary, c.findings) for c in run.checks.all()}
    assert run.status == RunStatus.PASSED, (run.status, report, workers.output())
    version.refresh_from_db()
    assert version.status == VersionStatus.CERTIFIED
    checks = list(run.checks.all())
    assert all(c.status in CHECK_DONE and c.finished_at and c.duration_ms is not None for c in checks)
    assert {c.check_id: c.status for c in checks} == dict.fromkeys(
        ["manifest", "signature", "package", "slow", "smoke"], CheckStatus.PASSED
    )
    # each check completed once: only the interrupted one was started twice
    assert {c.check_id: c.attempts for c in checks} == {
        "manifest": 1,
        "signature": 1,
        "package": 1,
        "slow": 2,
        "smoke": 1,
    }
    lines = starts.read_text().splitlines()
    assert len(lines) == 2, lines
    assert lines[0].split()[0] != lines[1].split()[0]  # by two different processes
    assert all(c.lease_token == "" and c.lease_expires_at is None for c in checks)
    print(f"recovered by {recovered_by} {recovered_in:.1f} s after the second worker started")

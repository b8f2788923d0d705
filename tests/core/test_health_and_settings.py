from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.db import connection
from django.db.utils import OperationalError

from tests.conftest import PRODUCTION_ENV


def test_healthz_answers_without_touching_the_database(db, client, django_assert_num_queries):
    with django_assert_num_queries(0):
        res = client.get("/healthz")
    assert res.status_code == 200 and res.json() == {"status": "ok"}
    assert res["X-Request-Id"].startswith("req_")


@pytest.mark.django_db
def test_readyz_names_each_check(client):
    res = client.get("/readyz")
    assert res.status_code == 200
    assert res.json()["checks"]["database"]["ok"] is True


@pytest.mark.django_db
def test_readyz_fails_when_the_database_is_unreachable(client, monkeypatch):
    def broken_cursor(*args, **kwargs):
        raise OperationalError("could not connect to server: Connection refused")

    monkeypatch.setattr(connection, "cursor", broken_cursor)
    res = client.get("/readyz")
    assert res.status_code == 503
    body = res.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"]["ok"] is False
    assert "Connection refused" in body["checks"]["database"]["error"]


def test_readyz_fails_for_a_real_unreachable_database(tmp_path):
    # a separate process pointed at a PostgreSQL port where nothing listens
    env = {
        **os.environ,
        "PLAZA_ENV": "development",
        "DATABASE_URL": "postgres://nobody@127.0.0.1:1/none",
        "PLAZA_DATA_DIR": str(tmp_path),
        "DEBUG": "false",
    }
    env.pop("CELERY_BROKER_URL", None)
    env.pop("REDIS_URL", None)
    code = (
        "import django, json; django.setup();"
        "from django.test import Client;"
        "r = Client().get('/readyz');"
        "print(r.status_code, json.dumps(r.json()))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=60
    )
    assert out.stdout.startswith("503 "), out.stdout + out.stderr


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({}, "SECRET_KEY"),
        ({"SECRET_KEY": "x" * 60, "ALLOWED_HOSTS": "plaza.example.com", "DEBUG": "true"}, "DEBUG"),
        ({"SECRET_KEY": "k3y-" + "abcdefghij" * 6}, "ALLOWED_HOSTS"),
    ],
)
def test_production_mode_refuses_unsafe_settings(overrides, message, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "ALLOWED_HOSTS", "DEBUG")}
    env.update({"PLAZA_ENV": "production", "PLAZA_DATA_DIR": str(tmp_path), **overrides})
    out = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode != 0
    assert "Refusing to start in production mode" in out.stderr and message in out.stderr


def _deploy_check(tmp_path, **overrides) -> subprocess.CompletedProcess:
    """``manage.py check --deploy`` in production mode with safe settings, changed by ``overrides``."""
    env = {**os.environ, **PRODUCTION_ENV, "PLAZA_DATA_DIR": str(tmp_path), **overrides}
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_mode_passes_the_deploy_check(tmp_path):
    out = _deploy_check(tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr


def test_request_id_is_echoed_when_valid_and_replaced_when_not(client):
    assert client.get("/healthz", HTTP_X_REQUEST_ID="abc-123-def-456")["X-Request-Id"] == "abc-123-def-456"
    replaced = client.get("/healthz", HTTP_X_REQUEST_ID="bad id\nwith newline")["X-Request-Id"]
    assert replaced.startswith("req_")


def test_deploy_check_flags_a_plain_http_base_url_and_an_unconfigured_proxy(tmp_path):
    out = _deploy_check(tmp_path, PLAZA_BASE_URL="http://plaza.example.com", PLAZA_BEHIND_PROXY="true")
    assert out.returncode != 0
    assert "plaza.W001" in out.stderr + out.stdout and "plaza.W002" in out.stderr + out.stdout


def test_production_refuses_to_start_without_a_countersigning_key(tmp_path):
    out = _deploy_check(tmp_path, PLAZA_SIGNING_KEY="")
    assert out.returncode != 0
    assert "PLAZA_SIGNING_KEY must be set" in out.stderr + out.stdout

"""Production refuses embeds without their own signing key, or on Plaza's own host."""

from __future__ import annotations

import base64
import os
import subprocess
import sys

from tests.conftest import PRODUCTION_ENV


def _check(tmp_path, **extra) -> subprocess.CompletedProcess:
    env = {**os.environ, **PRODUCTION_ENV, "PLAZA_DATA_DIR": str(tmp_path), **extra}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.run([sys.executable, "manage.py", "check"], env=env, capture_output=True, text=True, timeout=120)


def test_production_needs_a_token_key_when_embeds_are_on(tmp_path):
    assert _check(tmp_path).returncode == 0  # embeds off by default in production
    refused = _check(tmp_path, PLAZA_WIDGET_ORIGIN="https://widgets.example.net")
    assert refused.returncode != 0 and "PLAZA_EMBED_TOKEN_KEY must be set" in refused.stderr
    key = base64.b64encode(os.urandom(32)).decode()
    assert (
        _check(tmp_path, PLAZA_WIDGET_ORIGIN="https://widgets.example.net", PLAZA_EMBED_TOKEN_KEY=key).returncode == 0
    )
    same = _check(tmp_path, PLAZA_WIDGET_ORIGIN="https://plaza.example.com", PLAZA_EMBED_TOKEN_KEY=key)
    assert same.returncode != 0 and "must differ" in same.stderr


def test_production_refuses_widget_origins_under_plazas_host_plain_http_and_the_demo_host(tmp_path):
    key = base64.b64encode(os.urandom(32)).decode()
    for origin, message in (
        ("https://widgets.plaza.example.com", "must not be a subdomain"),
        ("http://widgets.example.net", "must use https://"),
    ):
        refused = _check(tmp_path, PLAZA_WIDGET_ORIGIN=origin, PLAZA_EMBED_TOKEN_KEY=key)
        assert refused.returncode != 0 and message in refused.stderr, origin
    demo = _check(tmp_path, PLAZA_DEMO_HOST_ORIGIN="https://demo.example.net")
    assert demo.returncode != 0 and "PLAZA_DEMO_HOST_ORIGIN is for development only" in demo.stderr

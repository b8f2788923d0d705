"""Invocation records of an extension's calls: the runner service that records them, and the
API and portal page where publishers read them back."""

from __future__ import annotations

import dataclasses

import pytest
import wasmtime
from django.urls import reverse

from apps.extensions.models import ExtensionVersion
from apps.runtime import outcomes, services
from apps.runtime.limits import DEFAULT_LIMITS
from apps.runtime.models import Invocation
from tests.conftest import ApiClient
from tests.extensions.conftest import manifest, package_bytes

HOOKS = """(module
  (import "plaza" "input_len" (func $ilen (result i32)))
  (import "plaza" "input_read" (func $iread (param i32) (result i32)))
  (import "plaza" "output_write" (func $owrite (param i32 i32) (result i32)))
  (import "plaza" "log" (func $log (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 4096) "tagged")
  (func (export "on_order_created") (result i32)
    (drop (call $iread (i32.const 0)))
    (drop (call $log (i32.const 4096) (i32.const 6)))
    (drop (call $owrite (i32.const 0) (call $ilen)))
    (i32.const 0))
  (func (export "spin") (result i32)
    (loop $again (br $again))
    (i32.const 0)))"""

SMALL_FUEL = dataclasses.replace(DEFAULT_LIMITS, fuel=200_000)


@pytest.fixture
def calls(publisher):
    """A version whose hooks run real code, called three times ok and once past its fuel."""
    doc = manifest(
        hooks=[
            {"event": "order.created", "module": "main", "export": "on_order_created"},
            {"event": "order.created", "module": "main", "export": "spin"},
        ]
    )
    data = package_bytes(doc, {"modules/main.wasm": wasmtime.wat2wasm(HOOKS)})
    r = publisher.upload(data=data)
    assert r.status_code == 201, r.content
    version = ExtensionVersion.objects.get(pk=r.json()["id"])
    for n in range(3):
        result, record = services.hook_invoke(
            version=version, export="on_order_created", input_value={"order": n}, installation_id="ins_a",
            correlation_id=f"corr-{n}",
        )  # fmt: skip
        assert result.outcome == outcomes.OK and result.output == {"order": n}, result
    result, _ = services.hook_invoke(version=version, export="spin", input_value={}, limits=SMALL_FUEL)
    assert result.outcome == outcomes.FUEL_EXHAUSTED
    return version


def _path(publisher, org=None, extension=None, suffix=""):
    org_id = (org or publisher.org).pk
    return f"orgs/{org_id}/extensions/{(extension or publisher.extension).pk}/invocations{suffix}"


def test_hook_invoke_runs_the_declared_module_and_records_the_call(calls):
    record = Invocation.objects.filter(export="on_order_created").order_by("pk").last()
    assert record.version_id == calls.pk and record.installation_id == "ins_a" and record.correlation_id == "corr-2"
    assert record.outcome == "ok" and record.log_excerpt == "tagged\n" and len(record.module_sha256) == 64
    assert record.fuel_used > 0 and record.duration_us > 0 and record.input_bytes == len(b'{"order":2}')


def test_hot_hook_modules_come_from_the_in_process_cache(calls):
    before = services._module_bytes.cache_info().hits
    services.hook_invoke(version=calls, export="on_order_created", input_value={"order": 9})
    assert services._module_bytes.cache_info().hits == before + 1


def test_an_undeclared_export_does_not_run_and_is_recorded(calls):
    result, record = services.hook_invoke(version=calls, export="memory", input_value=None)
    assert result.outcome == outcomes.EXPORT_MISSING and record.outcome == outcomes.EXPORT_MISSING
    assert record.version_id == calls.pk and record.fuel_used == 0


def test_publishers_list_their_extensions_calls_newest_first(publisher, calls):
    r = publisher.api.call("GET", _path(publisher))
    assert r.status_code == 200, r.content
    rows = r.json()["data"]
    assert [row["export"] for row in rows] == ["spin"] + ["on_order_created"] * 3
    first = rows[1]
    assert first["version"] == "1.0.0" and first["outcome"] == "ok" and first["log_excerpt"] == "tagged\n"
    assert first["correlation_id"] == "corr-2" and first["installation_id"] == "ins_a"
    assert set(first) == {
        "id", "version", "export", "outcome", "detail", "fuel_used", "memory_peak_bytes", "duration_us",
        "input_bytes", "output_bytes", "log_excerpt", "correlation_id", "installation_id", "created_at",
    }  # fmt: skip


def test_the_list_filters_by_outcome_and_version(publisher, calls):
    r = publisher.api.call("GET", _path(publisher), {"outcome": "fuel_exhausted"})
    assert [row["export"] for row in r.json()["data"]] == ["spin"]
    r = publisher.api.call("GET", _path(publisher), {"version_id": calls.pk, "limit": 2})
    assert len(r.json()["data"]) == 2 and r.json()["next_cursor"]
    r = publisher.api.call("GET", _path(publisher), {"version_id": "ver_00000000000000000000000000"})
    assert r.status_code == 200 and r.json()["data"] == []


@pytest.mark.parametrize(("param", "value"), [("outcome", "exploded"), ("version_id", "not-a-version")])
def test_bad_filters_are_refused(publisher, calls, param, value):
    r = publisher.api.call("GET", _path(publisher), {param: value})
    assert r.status_code == 400, r.content
    assert r.json()["error"]["param"] == param


def test_stats_count_outcomes_and_measure_durations(publisher, calls):
    r = publisher.api.call("GET", _path(publisher, suffix="/stats"), {"hours": 1})
    assert r.status_code == 200, r.content
    stats = r.json()
    assert stats["total"] == 4 and stats["counts"] == {"ok": 3, "fuel_exhausted": 1}
    assert stats["errors"] == 1 and stats["error_rate"] == 0.25
    assert 0 < stats["p50_duration_us"] <= stats["p95_duration_us"]
    assert stats["mean_fuel_used"] > 0 and stats["max_memory_peak_bytes"] == 65536


@pytest.mark.parametrize("hours", [0, 721])
def test_the_stats_window_is_bounded(publisher, calls, hours):
    r = publisher.api.call("GET", _path(publisher, suffix="/stats"), {"hours": hours})
    assert r.status_code == 400, r.content


@pytest.mark.parametrize("suffix", ["", "/stats"])
def test_another_organisation_cannot_read_the_calls(publisher, calls, globex, api_for, suffix):
    theirs = api_for(globex.org, role="owner")
    # neither under acme's path nor smuggled under their own
    assert theirs.call("GET", _path(publisher, suffix=suffix)).status_code == 404
    assert theirs.call("GET", _path(publisher, org=globex.org, suffix=suffix)).status_code == 404


def test_the_portal_page_shows_metrics_and_calls(acme, publisher, calls):
    client = ApiClient()
    client.force_login(acme.owner)
    res = client.get(reverse("invocation_list", args=[acme.org.pk, publisher.extension.pk]))
    assert res.status_code == 200
    body = res.content.decode()
    assert "fuel_exhausted 1" in body and "ok 3" in body and "25.0%" in body
    assert "tagged" in body and "on_order_created" in body and "spin" in body
    detail = client.get(reverse("extension_detail", args=[acme.org.pk, publisher.extension.pk]))
    assert reverse("invocation_list", args=[acme.org.pk, publisher.extension.pk]) in detail.content.decode()


def test_the_portal_page_has_an_empty_state_and_hides_other_organisations(acme, globex, publisher):
    client = ApiClient()
    client.force_login(acme.owner)
    res = client.get(reverse("invocation_list", args=[acme.org.pk, publisher.extension.pk]))
    assert res.status_code == 200 and b"No calls yet." in res.content
    client.force_login(globex.owner)
    res = client.get(reverse("invocation_list", args=[globex.org.pk, publisher.extension.pk]))
    assert res.status_code == 404

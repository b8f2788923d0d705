"""Reads of the runtime: an extension's invocation records and the metrics drawn from them.

Callers resolve (and authorise) the extension first: these only narrow to it."""

from __future__ import annotations

import datetime as dt

from django.db.models import Count, Max, QuerySet, Sum

from apps.runtime import outcomes
from apps.runtime.models import Invocation

PERCENTILE_SAMPLE = 10_000  # percentiles are drawn from at most this many of the newest calls
FAILURES = frozenset(outcomes.ALL) - {outcomes.OK}


def invocations_of(extension) -> QuerySet[Invocation]:
    """Every recorded call into any version of ``extension``, newest first (with the version's
    number; its manifest stays in the database)."""
    return (
        Invocation.objects.filter(version__extension_id=extension.pk)
        .select_related("version")
        .only("version__id", "version__version", *(f.name for f in Invocation._meta.concrete_fields))
        .order_by("-pk")
    )


def _percentile(ordered: list[int], fraction: float) -> int:
    """Nearest-rank percentile of an ascending list (0 when empty)."""
    if not ordered:
        return 0
    rank = max(1, -(-len(ordered) * fraction // 1))  # ceil(n * fraction), at least 1
    return ordered[int(rank) - 1]


def invocation_stats(extension, since: dt.datetime) -> dict:
    """Calls into ``extension`` since ``since``: counts per outcome, total, error rate (share of
    calls not ``ok``), p50/p95 duration (µs, over the newest PERCENTILE_SAMPLE calls), mean fuel
    and peak memory. Two queries."""
    recent = Invocation.objects.filter(version__extension_id=extension.pk, created_at__gte=since)
    per_outcome = list(
        recent.order_by()
        .values("outcome")
        .annotate(n=Count("pk"), fuel=Sum("fuel_used"), memory=Max("memory_peak_bytes"))
    )
    durations = sorted(recent.order_by("-pk").values_list("duration_us", flat=True)[:PERCENTILE_SAMPLE])
    counts = {row["outcome"]: row["n"] for row in sorted(per_outcome, key=lambda r: (-r["n"], r["outcome"]))}
    total = sum(counts.values())
    errors = total - counts.get(outcomes.OK, 0)
    fuel = sum(row["fuel"] or 0 for row in per_outcome)
    return {
        "since": since,
        "total": total,
        "counts": counts,
        "errors": errors,
        "error_rate": round(errors / total, 4) if total else 0.0,
        "p50_duration_us": _percentile(durations, 0.50),
        "p95_duration_us": _percentile(durations, 0.95),
        "mean_fuel_used": round(fuel / total) if total else 0,
        "max_memory_peak_bytes": max((row["memory"] or 0 for row in per_outcome), default=0),
    }

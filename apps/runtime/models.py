"""Data the sandbox keeps: each installation's key-value storage, and a record of every call."""

from __future__ import annotations

from django.db import models

from apps.core import clock
from apps.core.ids import PrefixedIdField


class KVEntry(models.Model):
    """One key of an installation's storage (host functions kv_get/kv_set/kv_delete)."""

    installation_id = models.CharField(max_length=32, db_index=True)
    key = models.CharField(max_length=256)
    value = models.BinaryField()
    size = models.PositiveIntegerField()  # len(key) + len(value), for the quota
    updated_at = models.DateTimeField(default=clock.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["installation_id", "key"], name="kv_key_unique")]

    def __str__(self) -> str:
        return f"{self.installation_id}:{self.key}"


class Invocation(models.Model):
    """One call into extension code and how it ended (outcome codes: apps.runtime.outcomes)."""

    id = PrefixedIdField(prefix="ivc")
    installation_id = models.CharField(max_length=32, blank=True, db_index=True)
    version = models.ForeignKey(
        "extensions.ExtensionVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=True
    )
    module_sha256 = models.CharField(max_length=64)
    export = models.CharField(max_length=64)
    outcome = models.CharField(max_length=32, db_index=True)
    detail = models.CharField(max_length=500, blank=True)
    fuel_used = models.BigIntegerField()
    memory_peak_bytes = models.BigIntegerField()
    duration_us = models.PositiveIntegerField()
    input_bytes = models.PositiveIntegerField()
    output_bytes = models.PositiveIntegerField()
    log_excerpt = models.CharField(max_length=1024, blank=True)
    correlation_id = models.CharField(max_length=64, blank=True, db_index=True)
    created_at = models.DateTimeField(default=clock.now)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["installation_id", "outcome"])]

    def __str__(self) -> str:
        return f"{self.export} → {self.outcome}"

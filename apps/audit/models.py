from __future__ import annotations

import hashlib
import json

from django.db import models

from apps.core import clock
from apps.core.ids import PrefixedIdField


class AppendOnlyError(RuntimeError):
    """The audit log is append-only: entries are never changed or removed through the ORM."""


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError("audit entries cannot be updated")

    def delete(self):
        raise AppendOnlyError("audit entries cannot be deleted")


class AuditEvent(models.Model):
    """One state change. Entries of one organisation form a hash chain: each entry's ``hash``
    covers its content and the previous entry's hash, so an edit or a deletion breaks the chain
    (``manage.py audit_verify``). ``org_id`` "" is the platform chain (sign-ins, MFA changes)."""

    id = PrefixedIdField(prefix="aud")
    org_id = models.CharField(max_length=32, blank=True, db_index=True)
    seq = models.PositiveBigIntegerField()
    created_at = models.DateTimeField(default=clock.now)
    actor_type = models.CharField(max_length=20)
    actor_id = models.CharField(max_length=32, blank=True)
    actor_label = models.CharField(max_length=254, blank=True)
    action = models.CharField(max_length=80, db_index=True)
    target_type = models.CharField(max_length=40, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_label = models.CharField(max_length=254, blank=True)
    changes = models.JSONField(default=dict, blank=True)
    ip = models.CharField(max_length=45, blank=True)
    user_agent = models.CharField(max_length=400, blank=True)
    request_id = models.CharField(max_length=128, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-seq"]
        constraints = [models.UniqueConstraint(fields=["org_id", "seq"], name="audit_seq_unique_per_chain")]
        indexes = [models.Index(fields=["org_id", "-id"])]

    def __str__(self) -> str:
        return f"{self.org_id or 'platform'}#{self.seq} {self.action}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError("audit entries cannot be updated")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("audit entries cannot be deleted")

    def compute_hash(self) -> str:
        return entry_hash(self)


GENESIS_HASH = "0" * 64

_HASHED_FIELDS = (
    "id",
    "org_id",
    "seq",
    "actor_type",
    "actor_id",
    "actor_label",
    "action",
    "target_type",
    "target_id",
    "target_label",
    "changes",
    "ip",
    "user_agent",
    "request_id",
    "prev_hash",
)


def entry_hash(event: AuditEvent) -> str:
    body = {name: getattr(event, name) for name in _HASHED_FIELDS}
    body["created_at"] = event.created_at.isoformat(timespec="microseconds")
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


class AuditChainHead(models.Model):
    """The last entry of each chain: appends lock this row, and verification compares against it,
    so removing the newest entries is detected too."""

    org_id = models.CharField(max_length=32, primary_key=True, blank=True)
    seq = models.PositiveBigIntegerField(default=0)
    hash = models.CharField(max_length=64, default=GENESIS_HASH)

    def __str__(self) -> str:
        return f"{self.org_id or 'platform'} head at {self.seq}"

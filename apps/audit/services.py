"""Writing to and checking the audit log."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import models, transaction

from apps.audit.models import GENESIS_HASH, AuditChainHead, AuditEvent, entry_hash
from apps.core import clock, context
from apps.core.ids import new_id


def audit_record(
    *,
    action: str,
    org_id: str = "",
    target: models.Model | None = None,
    target_type: str = "",
    target_id: str = "",
    target_label: str = "",
    changes: dict | None = None,
) -> AuditEvent:
    """Append one entry to ``org_id``'s chain, with the actor, IP, user agent and request id of
    the current request context. Runs inside the caller's transaction, so the entry exists
    exactly when the change it describes does."""
    ctx = context.current()
    if target is not None:
        target_type = target_type or target._meta.model_name
        target_id = target_id or str(target.pk)
        target_label = target_label or str(target)[:254]
    with transaction.atomic():
        head, _ = AuditChainHead.objects.select_for_update().get_or_create(org_id=org_id)
        event = AuditEvent(
            id=new_id("aud"),
            org_id=org_id,
            seq=head.seq + 1,
            created_at=clock.now(),
            actor_type=ctx.actor_type,
            actor_id=ctx.actor_id,
            actor_label=ctx.actor_label[:254],
            action=action,
            target_type=target_type,
            target_id=target_id,
            target_label=target_label,
            changes=changes or {},
            ip=ctx.ip,
            user_agent=ctx.user_agent,
            request_id=ctx.request_id,
            prev_hash=head.hash,
        )
        event.hash = entry_hash(event)
        event.save(force_insert=True)
        head.seq, head.hash = event.seq, event.hash
        head.save(update_fields=["seq", "hash"])
    return event


def diff(before: dict, after: dict) -> dict:
    """A before/after summary holding only the fields that changed."""
    return {
        key: {"before": before.get(key), "after": after.get(key)} for key in after if before.get(key) != after.get(key)
    }


@dataclass
class ChainProblem:
    org_id: str
    seq: int | None
    problem: str


@dataclass
class VerifyReport:
    chains: int = 0
    entries: int = 0
    problems: list[ChainProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def audit_verify(*, org_id: str | None = None, batch_size: int = 2000) -> VerifyReport:
    """Recompute every chain (or one) and report each edited, inserted or deleted entry."""
    report = VerifyReport()
    heads = {h.org_id: h for h in AuditChainHead.objects.all()}
    chain_ids = set(heads) | set(AuditEvent.objects.values_list("org_id", flat=True).distinct())
    if org_id is not None:
        chain_ids &= {org_id}
    for chain in sorted(chain_ids):
        report.chains += 1
        expected_seq, prev = 1, GENESIS_HASH
        events = AuditEvent.objects.filter(org_id=chain).order_by("seq")
        for event in events.iterator(chunk_size=batch_size):
            report.entries += 1
            if event.seq != expected_seq:
                report.problems.append(
                    ChainProblem(chain, event.seq, f"entries {expected_seq}..{event.seq - 1} are missing")
                )
            elif event.prev_hash != prev:
                report.problems.append(ChainProblem(chain, event.seq, "link to the previous entry is broken"))
            if entry_hash(event) != event.hash:
                report.problems.append(ChainProblem(chain, event.seq, "content does not match its hash (edited)"))
            expected_seq, prev = event.seq + 1, event.hash
        head = heads.get(chain)
        if head is None:
            report.problems.append(ChainProblem(chain, None, "chain head is missing"))
        elif head.seq != expected_seq - 1 or head.hash != prev:
            report.problems.append(
                ChainProblem(
                    chain,
                    head.seq,
                    f"chain ends at entry {expected_seq - 1} but its head says {head.seq}: newest entries deleted",
                )
            )
    return report

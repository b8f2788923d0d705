"""Running an installation's extension code: only while the installation is active and its
organisation's rules still allow it, and only with the scopes it was granted.

Callers (an event dispatcher, an agent's tool call) may hold an ``Installation`` loaded long before
the call, so nothing here trusts it: the row is read again right before running, and the run uses
that fresh row's status, version and grant. An uninstall can still commit while the code runs; that
is made safe without holding a lock for the length of the run (which may wait on an HTTP fetch):

- the runtime's key-value writes (``apps.runtime.host.kv_set`` / ``kv_delete``) lock the
  installation's row and are refused unless it is active. An uninstall locks the same row before it
  marks it uninstalled and runs its cleaners, so a write either commits before the uninstall (and
  its cleaner deletes it) or waits for it and is refused: nothing is written after the cleanup
  report was made;
- the call's invocation record is detached (``installation_id`` cleared) when the installation was
  uninstalled meanwhile, under the same row lock, so a record is never linked again to an
  installation whose cleanup report said its links were gone.
"""

from __future__ import annotations

from django.db import transaction

from apps.installs.models import Installation, InstallationStatus
from apps.installs.rules import install_refusal
from apps.installs.selectors import effective_scopes
from apps.runtime.models import Invocation
from apps.runtime.runner import Result
from apps.runtime.services import hook_invoke, invocation_record

# How a refused call is recorded (nothing ran): alongside apps.runtime.outcomes' codes.
NOT_ACTIVE = "installation_not_active"
DENIED_BY_RULE = "denied_by_org_rule"


def _detach_if_uninstalled(record: Invocation) -> None:
    """Clear the record's link when its installation was uninstalled while it ran. The row lock
    waits for an uninstall in progress, so either this sees it, or the uninstall's cleaner (which
    runs after) sees the record."""
    if not record.installation_id:
        return
    with transaction.atomic():
        status = (
            Installation.objects.select_for_update()
            .filter(pk=record.installation_id)
            .values_list("status", flat=True)
            .first()
        )
        if status == InstallationStatus.UNINSTALLED:
            Invocation.objects.filter(pk=record.pk).update(installation_id="")
            record.installation_id = ""


def installation_invoke(*, installation: Installation, export: str, input_value, correlation_id: str = "") -> Result:
    """Run ``export`` (a hook or a tool) of the installed version with the effective scopes
    (granted ∩ the version's). A blocked or uninstalled installation, or one the organisation's
    rules now refuse, does not run: the refusal is recorded as the call's outcome and returned (for
    an uninstalled installation, recorded without a link to it: its cleanup is done)."""
    fresh = Installation.objects.select_related("org", "extension", "version").filter(pk=installation.pk).first()
    if fresh is None:  # never saved, or deleted with its organisation: nothing to run, nothing to link
        return Result(NOT_ACTIVE, "The installation does not exist; nothing of it runs.")
    scopes = effective_scopes(fresh)
    result = None
    if fresh.status != InstallationStatus.ACTIVE:
        result = Result(NOT_ACTIVE, f"The installation is {fresh.status}; nothing of it runs.")
    else:
        refusal = install_refusal(fresh.org, fresh.extension, scopes)
        result = Result(DENIED_BY_RULE, refusal.message[:500]) if refusal is not None else None
    if result is not None:
        record = invocation_record(
            result=result,
            module_sha256="",
            export=export,
            installation_id="" if fresh.status == InstallationStatus.UNINSTALLED else fresh.pk,
            correlation_id=correlation_id,
            version=fresh.version,
        )
        _detach_if_uninstalled(record)
        return result
    result, record = hook_invoke(
        version=fresh.version,
        export=export,
        input_value=input_value,
        installation_id=fresh.pk,
        scopes=scopes,
        correlation_id=correlation_id,
    )
    _detach_if_uninstalled(record)
    return result

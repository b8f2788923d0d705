"""Running an installation's extension code: only while the installation is active and its
organisation's rules still allow it, and only with the scopes it was granted."""

from __future__ import annotations

from apps.installs.models import Installation, InstallationStatus
from apps.installs.rules import install_refusal
from apps.installs.selectors import effective_scopes
from apps.runtime.runner import Result
from apps.runtime.services import hook_invoke, invocation_record

# How a refused call is recorded (nothing ran): alongside apps.runtime.outcomes' codes.
NOT_ACTIVE = "installation_not_active"
DENIED_BY_RULE = "denied_by_org_rule"


def installation_invoke(*, installation: Installation, export: str, input_value, correlation_id: str = "") -> Result:
    """Run ``export`` (a hook or a tool) of the installed version with the effective scopes
    (granted ∩ the version's). A blocked or uninstalled installation, or one the organisation's
    rules now refuse, does not run: the refusal is recorded as the call's outcome and returned."""
    scopes = effective_scopes(installation)
    refusal = None
    if installation.status != InstallationStatus.ACTIVE:
        result = Result(NOT_ACTIVE, f"The installation is {installation.status}; nothing of it runs.")
    else:
        refusal = install_refusal(installation.org, installation.extension, scopes)
        result = Result(DENIED_BY_RULE, refusal.message[:500]) if refusal is not None else None
    if result is not None:
        invocation_record(
            result=result,
            module_sha256="",
            export=export,
            installation_id=installation.pk,
            correlation_id=correlation_id,
            version=installation.version,
        )
        return result
    result, _ = hook_invoke(
        version=installation.version,
        export=export,
        input_value=input_value,
        installation_id=installation.pk,
        scopes=scopes,
        correlation_id=correlation_id,
    )
    return result

"""Every write of the installs app: one function per use case, transactional, audited; the
``installation_changed`` signal follows after commit. Import from here
(``from apps.installs import services``). Organisation controls (rules, policy, requests) live in
``services.controls``."""

from apps.installs.services.lifecycle import installation_configure, installation_create, installation_uninstall
from apps.installs.services.runtime import installation_invoke
from apps.installs.services.tokens import installation_token_issue
from apps.installs.services.updates import (
    channel_release_apply,
    installation_rollback,
    installation_settings_update,
    installation_update,
)

__all__ = [
    "channel_release_apply",
    "installation_configure",
    "installation_create",
    "installation_invoke",
    "installation_rollback",
    "installation_settings_update",
    "installation_token_issue",
    "installation_uninstall",
    "installation_update",
]

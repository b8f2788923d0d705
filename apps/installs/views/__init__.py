"""The install console (HTMX pages): choosing where to install, the consent screen with the
settings form, the organisation's installations, one installation (settings, configuration,
update with re-consent, rollback, history, uninstall) and the cleanup report an uninstall leaves.

Thin: reads go through ``apps.installs.selectors``, every change through one service of
``apps.installs.services``; domain errors become page states (403/404/409), never 500s. Members
may look; the buttons are for those whose role allows the change, and a POST from anyone else
answers the 403 page."""

from apps.installs.views.install import install_consent, install_start
from apps.installs.views.installations import installation_cleanup, installation_detail, installations

__all__ = ["install_consent", "install_start", "installation_cleanup", "installation_detail", "installations"]

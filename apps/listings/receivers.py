"""Signal receivers of the listings app."""

from __future__ import annotations

import logging

from django.dispatch import receiver

from apps.installs.models import Installation
from apps.installs.signals import installation_changed

log = logging.getLogger("plaza.listings")


@receiver(installation_changed, sender=Installation, dispatch_uid="listings.install_count")
def recount_installations(sender, installation, action: str = "", **kwargs) -> None:
    """Keep the listing's install count: recounted from the installations on every change (a
    sandbox tenant's installations never count)."""
    from apps.listings.services import listing_install_count_refresh

    try:
        listing_install_count_refresh(extension_id=installation.extension_id)
    except Exception:  # a receiver must not raise (send_robust would only log it anyway)
        log.exception("could not recount the installations of %s", installation.extension_id)

from __future__ import annotations

import smtplib

from celery import shared_task

from apps.orgs.models import Invitation
from apps.orgs.services import invitation_email_send


@shared_task(
    bind=True,
    name="orgs.send_invitation_email",
    autoretry_for=(smtplib.SMTPException, OSError),
    retry_backoff=30,
    retry_backoff_max=3600,
    retry_jitter=False,
    max_retries=8,
)
def send_invitation_email(self, invitation_id: str, raw_token: str, inviter: str) -> bool:
    """Send one invitation's mail; retried with backoff (30 s, 60 s, … up to an hour) on mail errors."""
    invitation = Invitation.objects.select_related("org").filter(pk=invitation_id).first()
    if invitation is None:
        return False
    return invitation_email_send(invitation=invitation, raw_token=raw_token, inviter=inviter)

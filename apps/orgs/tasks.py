from __future__ import annotations

from celery import shared_task

from apps.orgs.models import Invitation
from apps.orgs.services import invitation_email_send


@shared_task(name="orgs.send_invitation_email")
def send_invitation_email(invitation_id: str, raw_token: str, inviter: str) -> bool:
    """Mail one invitation if it is still pending (delivery itself is retried by core.send_email)."""
    invitation = Invitation.objects.select_related("org").filter(pk=invitation_id).first()
    if invitation is None:
        return False
    return invitation_email_send(invitation=invitation, raw_token=raw_token, inviter=inviter)

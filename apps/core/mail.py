"""Every e-mail Plaza sends (allauth's and its own) goes through a retried task.

``EMAIL_BACKEND`` is :class:`QueuedEmailBackend`: it hands each message to ``core.send_email``,
which delivers it with ``PLAZA_EMAIL_DELIVERY_BACKEND`` (SMTP in production, the console in
development) and retries with backoff when the mail server fails, so a slow or broken mail
server never fails or stalls the request that caused the mail.
"""

from __future__ import annotations

from django.core.mail import EmailMessage, EmailMultiAlternatives
from django.core.mail.backends.base import BaseEmailBackend


def message_to_dict(message: EmailMessage) -> dict:
    return {
        "subject": str(message.subject),
        "body": str(message.body),
        "from_email": message.from_email,
        "to": list(message.to),
        "cc": list(message.cc),
        "bcc": list(message.bcc),
        "reply_to": list(message.reply_to),
        "headers": dict(message.extra_headers),
        "alternatives": [[content, mimetype] for content, mimetype in getattr(message, "alternatives", [])],
    }


def message_from_dict(data: dict) -> EmailMultiAlternatives:
    message = EmailMultiAlternatives(
        subject=data["subject"],
        body=data["body"],
        from_email=data["from_email"],
        to=data["to"],
        cc=data["cc"],
        bcc=data["bcc"],
        reply_to=data["reply_to"],
        headers=data["headers"],
    )
    for content, mimetype in data["alternatives"]:
        message.attach_alternative(content, mimetype)
    return message


class QueuedEmailBackend(BaseEmailBackend):
    def send_messages(self, email_messages) -> int:
        from apps.core.tasks import send_email

        for message in email_messages:
            send_email.delay(message_to_dict(message))
        return len(email_messages)

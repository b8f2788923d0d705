import time

from allauth.account.signals import (
    email_added,
    email_changed,
    email_confirmed,
    email_removed,
    password_changed,
    password_reset,
    password_set,
    user_signed_up,
)
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from apps.accounts.models import UserSession
from apps.accounts.services import user_session_end, user_session_start
from apps.audit.services import audit_record
from apps.core import context
from apps.core.http import client_ip, user_agent


@receiver(user_logged_in)
def on_login(sender, request, user, **kwargs):
    if request is None or not hasattr(request, "session"):
        return
    if not request.session.session_key:
        request.session.save()
    request.session["plaza_login_at"] = time.time()
    # Read by MFARequiredMiddleware on every request, so the device lookup happens once.
    request.session["plaza_mfa"] = user.has_mfa()
    session = user_session_start(
        user=user,
        session_key=request.session.session_key,
        ip=client_ip(request),
        user_agent=user_agent(request),
    )
    request.session["plaza_session_id"] = session.pk
    context.update(actor_type="user", actor_id=user.pk, actor_label=user.email)
    audit_record(action="user.logged_in", target=user, changes={"session": session.pk})


@receiver(user_logged_out)
def on_logout(sender, request, user, **kwargs):
    if user is None or request is None:
        return
    session = UserSession.objects.filter(session_key=request.session.session_key or "", ended_at__isnull=True).first()
    audit_record(action="user.logged_out", target=user)
    if session:
        user_session_end(session=session, reason="logout")


@receiver(user_login_failed)
def on_login_failed(sender, credentials, request=None, **kwargs):
    email = str(credentials.get("email") or credentials.get("username") or "")[:254]
    audit_record(action="user.login_failed", target_type="user", target_label=email)


@receiver(user_signed_up)
def on_signup(sender, request, user, **kwargs):
    audit_record(action="user.signed_up", target=user)


@receiver(email_confirmed)
def on_email_confirmed(sender, request, email_address, **kwargs):
    audit_record(action="user.email_verified", target=email_address.user, changes={"email": email_address.email})


@receiver(password_changed)
@receiver(password_set)
@receiver(password_reset)
def on_password_change(sender, request, user, signal, **kwargs):
    action = {password_changed: "user.password_changed", password_set: "user.password_set"}.get(
        signal, "user.password_reset"
    )
    audit_record(action=action, target=user)


@receiver(email_added)
@receiver(email_removed)
def on_email_added_or_removed(sender, request, user, email_address, signal, **kwargs):
    action = "user.email_added" if signal is email_added else "user.email_removed"
    audit_record(action=action, target=user, changes={"email": email_address.email})


@receiver(email_changed)
def on_email_changed(sender, request, user, from_email_address, to_email_address, **kwargs):
    before = from_email_address.email if from_email_address else None
    audit_record(
        action="user.email_changed", target=user, changes={"email": {"before": before, "after": to_email_address.email}}
    )

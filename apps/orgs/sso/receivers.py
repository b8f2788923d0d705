"""After a sign-in (allauth's ``user_logged_in``, sent once the session is established): record
which provider signed the session in, complete an SSO sign-in (just-in-time membership, audit),
and flag an owner's break-glass password sign-in.

And the end of a link to an organisation's identity provider: a person's links to an
organisation's IdP are removed when their membership there is removed or deactivated, and all
their links when their account's e-mail address changes (the links were made for the old one)."""

from __future__ import annotations

from allauth.account.signals import user_logged_in
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver

from apps.orgs.models import Membership
from apps.orgs.sso.adapter import SESSION_BREAK_GLASS, SESSION_PROVIDER, asserted_email
from apps.orgs.sso.selectors import PROVIDER_PREFIX, enabled_connection_for_provider
from apps.orgs.sso.services import (
    sso_break_glass_login,
    sso_login_complete,
    sso_password_login_check,
    sso_unlink_membership,
    sso_unlink_user,
)


@receiver(user_logged_in, dispatch_uid="plaza_sso_after_login")
def on_logged_in(sender, request, user, sociallogin=None, **kwargs):
    if request is None or not hasattr(request, "session"):
        return
    session = request.session
    session.pop(SESSION_PROVIDER, None)
    session.pop(SESSION_BREAK_GLASS, None)
    provider = str(sociallogin.account.provider) if sociallogin is not None else ""
    if provider.startswith(PROVIDER_PREFIX):
        connection = enabled_connection_for_provider(provider)
        if connection is None:
            return
        email, verified = asserted_email(sociallogin)
        sso_login_complete(connection=connection, user=user, email=email, email_verified=verified)
        session[SESSION_PROVIDER] = provider
        return
    if sociallogin is None:
        decision = sso_password_login_check(user=user)
        if decision.break_glass:
            sso_break_glass_login(user=user, orgs=decision.break_glass)
            session[SESSION_BREAK_GLASS] = [org.pk for org in decision.break_glass]
            names = ", ".join(org.name for org in decision.break_glass)
            messages.warning(
                request,
                f"Break-glass sign-in: {names} requires single sign-on. You signed in with a password "
                "as an owner; this has been recorded in the audit log.",
            )


@receiver(post_delete, sender=Membership, dispatch_uid="plaza_sso_unlink_removed_member")
def on_membership_deleted(sender, instance, **kwargs):
    sso_unlink_membership(org_id=instance.org_id, user_id=instance.user_id)


@receiver(post_save, sender=Membership, dispatch_uid="plaza_sso_unlink_deactivated_member")
def on_membership_saved(sender, instance, created=False, update_fields=None, **kwargs):
    if instance.deactivated_at is not None:
        sso_unlink_membership(org_id=instance.org_id, user_id=instance.user_id)


_OLD_EMAIL = "_plaza_sso_old_email"


@receiver(pre_save, sender=get_user_model(), dispatch_uid="plaza_sso_remember_old_email")
def on_user_saving(sender, instance, raw=False, update_fields=None, **kwargs):
    if raw or instance._state.adding or (update_fields is not None and "email" not in update_fields):
        return
    old = sender._default_manager.filter(pk=instance.pk).values_list("email", flat=True).first()
    setattr(instance, _OLD_EMAIL, old)


@receiver(post_save, sender=get_user_model(), dispatch_uid="plaza_sso_unlink_on_email_change")
def on_user_saved(sender, instance, created=False, raw=False, **kwargs):
    old = instance.__dict__.pop(_OLD_EMAIL, None)
    if raw or created or old is None:
        return
    if (old or "").strip().lower() != (instance.email or "").strip().lower():
        sso_unlink_user(user_id=instance.pk)

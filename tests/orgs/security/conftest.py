"""Helpers for the enforced-policy tests: signed-in clients, second factors, policy switches."""

from __future__ import annotations

import pytest
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.conftest import ApiClient
from tests.factories import PASSWORD


def totp_now(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"


def give_factors(user) -> TOTPDevice:
    """A confirmed authenticator and one backup code for ``user``."""
    device = TOTPDevice.objects.create(user=user, name="authenticator", confirmed=True)
    backup = StaticDevice.objects.create(user=user, name="backup", confirmed=True)
    StaticToken.objects.create(device=backup, token="abcd2345")
    return device


def signed_in(user, **extra) -> ApiClient:
    """A client signed in as ``user`` through the session (second factor verified when ``user`` has one)."""
    client = ApiClient(**extra)
    client.force_login(user)
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    if device is not None:
        res = client.post("/accounts/mfa/verify/", {"code": totp_now(device)})
        assert res.status_code == 302, res.content[:300]
    return client


def password_signed_in(user, **extra) -> ApiClient:
    """A client signed in through the sign-in form, so its session records ``extra``'s address and
    user agent (force_login's request carries neither)."""
    client = ApiClient(**extra)
    assert client.post("/accounts/login/", {"login": user.email, "password": PASSWORD}).status_code == 302
    return client


def set_policy(org, **fields) -> None:
    for key, value in fields.items():
        setattr(org, key, value)
    org.save(update_fields=list(fields))


@pytest.fixture
def second_owner(acme):
    from apps.orgs.models import Role
    from tests.factories import MembershipFactory, UserFactory

    return MembershipFactory(org=acme.org, role=Role.OWNER, user=UserFactory(email="olga@acme.test"))

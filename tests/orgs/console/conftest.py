from __future__ import annotations

import pytest

from apps.orgs.models import Group, Membership, MemberSource, Role
from tests.factories import MembershipFactory, UserFactory


@pytest.fixture
def engineering(acme) -> Group:
    """A group made in Plaza, with bob in it."""
    group = Group.objects.create(org=acme.org, display_name="Engineering")
    group.members.add(Membership.objects.get(org=acme.org, user=acme.user(Role.MEMBER)))
    return group


@pytest.fixture
def scim_group(acme) -> Group:
    """A group the identity provider pushed over SCIM, with a provisioned member."""
    group = Group.objects.create(org=acme.org, display_name="Okta Admins", source=MemberSource.SCIM, external_id="00g1")
    group.members.add(dana(acme))
    return group


def dana(acme) -> Membership:
    """A member provisioned over SCIM (made once per test)."""
    return Membership.objects.filter(org=acme.org, user__email="dana@acme.test").first() or MembershipFactory(
        org=acme.org,
        role=Role.MEMBER,
        source=MemberSource.SCIM,
        external_id="00u-dana",
        user=UserFactory(email="dana@acme.test", name="Dana Scully"),
    )


@pytest.fixture
def provisioned(acme) -> Membership:
    return dana(acme)

"""Reads for the enforced security policy: what a person's organisations demand of their session,
and the signed-in sessions of an organisation's members."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Exists, Min, OuterRef, Q, QuerySet

from apps.accounts.models import UserSession
from apps.orgs.models import Membership, Organization
from apps.orgs.selectors import org_governs_user, verified_domains_of


@dataclass(frozen=True)
class SessionDemands:
    """The strictest requirements among the organisations a person is an active member of."""

    mfa_required: bool
    idle_timeout_minutes: int | None
    max_session_age_minutes: int | None = None


def session_demands_for_user(user) -> SessionDemands:
    """One query: whether any active membership's organisation requires MFA, and the shortest idle
    timeout among them (None: no limit)."""
    row = Membership.objects.filter(user=user, deactivated_at__isnull=True).aggregate(
        mfa=Count("pk", filter=Q(org__require_mfa=True)),
        idle=Min("org__idle_timeout_minutes"),
        age=Min("org__max_session_age_minutes"),
    )
    return SessionDemands(
        mfa_required=bool(row["mfa"]), idle_timeout_minutes=row["idle"], max_session_age_minutes=row["age"]
    )


def _governed_members(org: Organization) -> QuerySet[Membership]:
    """Active memberships whose account ``org`` governs (``org_governs_user``, as one query): a
    session is the person's, so an org sees it only when the account is the org's to govern."""
    in_domain = Q(pk__in=[])
    for domain in verified_domains_of(org):
        in_domain |= Q(user__email__iendswith=f"@{domain}")
    elsewhere = Membership.objects.filter(user_id=OuterRef("user_id"), deactivated_at__isnull=True).exclude(org=org)
    return Membership.objects.filter(org=org, deactivated_at__isnull=True).filter(in_domain | ~Exists(elsewhere))


def sessions_of_org(org: Organization) -> QuerySet[UserSession]:
    """Live sessions of the people whose account ``org`` governs (``org`` already authorised)."""
    members = _governed_members(org).values("user_id")
    return UserSession.objects.filter(ended_at__isnull=True, user_id__in=members).select_related("user")


def sessions_of_member(membership: Membership) -> QuerySet[UserSession]:
    """The member's live sessions, or none when the org does not govern their account."""
    if not org_governs_user(membership.org, membership.user):
        return UserSession.objects.none()
    return UserSession.objects.filter(user_id=membership.user_id, ended_at__isnull=True)


def membership_ids_by_user(org: Organization, user_ids: list[str]) -> dict[str, str]:
    """{user id: membership id in ``org``}, for linking session rows to members (one query)."""
    return dict(Membership.objects.filter(org=org, user_id__in=user_ids).values_list("user_id", "pk"))

"""Reads of the admin console: members with their identity state, and groups.

Each list is one annotated query plus fixed prefetches, whatever the number of rows (the console's
pages are in tests/test_query_counts.py)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from apps.accounts.models import UserSession
from apps.core.errors import Conflict, NotFound
from apps.core.ids import is_valid_id
from apps.orgs.models import Group, Membership, MemberSource, Organization, Role
from apps.orgs.policy import Principal, authorize

# Audit actions about identity and access: the console's audit view shows only these.
IDENTITY_ACTION_PREFIXES = (
    "member.",
    "invitation.",
    "sso.",
    "scim.",
    "group.",
    "session.",
    "mfa.",
    "token.",
    "service_account.",
    "domain.",
    "org.policy",
)


# --- members --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FactorKind:
    """One kind of second factor: a django-otp device model, as the console names it."""

    annotation: str  # the boolean annotation on each membership
    label: str
    model: type


def factor_kinds() -> list[FactorKind]:
    """The installed django-otp device models (TOTP, backup codes, and passkeys when
    django-otp-webauthn is installed), looked up at run time so a new plugin shows up on its own."""
    from django_otp import device_classes

    labels = {"otp_totp": "Authenticator app", "otp_static": "Backup codes", "django_otp_webauthn": "Passkey"}
    kinds = []
    for model in device_classes():
        field_names = {f.name for f in model._meta.fields}
        if not {"user", "confirmed"} <= field_names:
            continue
        meta = model._meta
        label = labels.get(meta.app_label, str(meta.verbose_name).capitalize())
        kinds.append(FactorKind(annotation=f"factor_{meta.app_label}_{meta.model_name}", label=label, model=model))
    return kinds


def _has_factor(kind: FactorKind) -> Exists:
    return Exists(kind.model.objects.filter(user_id=OuterRef("user_id"), confirmed=True))


MEMBER_STATUSES = ("active", "deactivated")


def console_members(
    org: Organization,
    *,
    source: str = "",
    mfa: str = "",
    status: str = "",
    role: str = "",
    search: str = "",
) -> QuerySet[Membership]:
    """``org``'s members with ``factor_*`` booleans (one per kind of second factor), ``mfa_enabled``,
    ``last_seen`` (the latest tracked session's last request, else the last sign-in) and their
    groups prefetched. Filters: ``source`` (a MemberSource), ``mfa`` ("on"/"off"), ``status``
    ("active"/"deactivated"), ``role`` and ``search`` (in name and e-mail). Unknown filter values
    are ignored, as the portal's other filters do."""
    kinds = factor_kinds()
    last_session = (
        UserSession.objects.filter(user_id=OuterRef("user_id")).order_by("-last_seen_at").values("last_seen_at")[:1]
    )
    qs = (
        Membership.objects.filter(org=org)
        .select_related("user")
        .annotate(last_seen=Coalesce(Subquery(last_session), "user__last_login"))
        .annotate(**{kind.annotation: _has_factor(kind) for kind in kinds})
        .prefetch_related(Prefetch("groups", queryset=Group.objects.order_by("display_name")))
    )
    any_factor = Q()
    for kind in kinds:
        any_factor |= Q(**{kind.annotation: True})
    if source in MemberSource.values:
        qs = qs.filter(source=source)
    if mfa in ("on", "off") and kinds:
        qs = qs.filter(any_factor) if mfa == "on" else qs.exclude(any_factor)
    elif mfa == "on":
        qs = qs.none()
    if status == "active":
        qs = qs.filter(deactivated_at__isnull=True)
    elif status == "deactivated":
        qs = qs.filter(deactivated_at__isnull=False)
    if role in Role.values:
        qs = qs.filter(role=role)
    if search:
        qs = qs.filter(Q(user__email__icontains=search) | Q(user__name__icontains=search))
    return qs


def with_factors(memberships: list[Membership]) -> list[Membership]:
    """Set ``factors`` (labels of the confirmed kinds) and ``mfa_enabled`` on each row of
    ``console_members``; no queries."""
    kinds = factor_kinds()
    for m in memberships:
        m.factors = [kind.label for kind in kinds if getattr(m, kind.annotation, False)]
        m.mfa_enabled = bool(m.factors)
    return memberships


# --- groups ---------------------------------------------------------------------------------------
def groups_of(org: Organization) -> QuerySet[Group]:
    """``org``'s groups with ``member_count`` and their workspace, in one query."""
    return Group.objects.filter(org=org).select_related("workspace").annotate(member_count=Count("members"))


def group_members(group: Group) -> QuerySet[Membership]:
    return group.members.select_related("user")


def is_managed_by_idp(group: Group) -> bool:
    """SCIM groups belong to the identity provider: their name, external id and members come from it
    (a change here would be undone by the next sync), so the console and the API do not change them.
    Their role and workspace are Plaza's mapping of the IdP group, which SCIM does not carry: admins
    set those here (docs/scim.md, "Role rule")."""
    return group.source == MemberSource.SCIM


# What a console or API change may touch on a group the identity provider owns.
IDP_GROUP_EDITABLE = frozenset({"role", "workspace"})


def check_group_change(group: Group, changes: set[str]) -> None:
    """Refuse (409 ``group_managed_by_idp``) a change to what the identity provider owns: on a
    SCIM group, anything but its role and workspace (``changes`` names fields, ``"members"`` or
    ``"delete"``)."""
    if is_managed_by_idp(group) and not changes <= IDP_GROUP_EDITABLE:
        raise Conflict(
            "This group is provisioned by your identity provider over SCIM: change its name and "
            "members there. Only its role and workspace are set in Plaza.",
            code="group_managed_by_idp",
        )


def get_group_for_principal(principal: Principal, org: Organization, group_id: str, action: str) -> Group:
    """One group of ``org`` (already resolved by get_org_for_principal), ``action`` authorised.

    Another organisation's group, or a malformed id, is NotFound."""
    if not is_valid_id(group_id, "grp"):
        raise NotFound("No such group.")
    group = groups_of(org).filter(pk=group_id).first()
    if group is None:
        raise NotFound("No such group.")
    group.org = org
    authorize(principal, action, group)
    return group

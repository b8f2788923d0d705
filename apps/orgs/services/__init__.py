"""Every write to organisations, workspaces, members, invitations, domains, service accounts and
tokens. Callers pass objects already resolved and authorised by ``apps.orgs.selectors``; these
functions enforce the business rules, write in one transaction and append to the audit log.

Split by subject; import from here (``from apps.orgs import services``)."""

from apps.orgs.services.credentials import (
    MAX_TOKEN_DAYS,
    TOKEN_PREFIX,
    service_account_create,
    service_account_disable,
    token_authenticate,
    token_create,
    token_revoke,
)
from apps.orgs.services.domains import (
    _DOMAIN_RE,
    domain_add,
    domain_remove,
    domain_verify,
)
from apps.orgs.services.members import (
    invitation_accept,
    invitation_by_token,
    invitation_create,
    invitation_email_send,
    invitation_revoke,
    member_add,
    member_remove,
    member_update,
)
from apps.orgs.services.organisations import (
    MANAGE_WORKSPACE,
    org_create,
    org_policy_update,
    org_update,
    workspace_create,
    workspace_delete,
    workspace_manager_set,
    workspace_update,
)
from apps.orgs.services.sandbox import sandbox_org_ensure

__all__ = [
    "MANAGE_WORKSPACE",
    "MAX_TOKEN_DAYS",
    "TOKEN_PREFIX",
    "_DOMAIN_RE",
    "domain_add",
    "domain_remove",
    "domain_verify",
    "invitation_accept",
    "invitation_by_token",
    "invitation_create",
    "invitation_email_send",
    "invitation_revoke",
    "member_add",
    "member_remove",
    "member_update",
    "org_create",
    "org_policy_update",
    "org_update",
    "sandbox_org_ensure",
    "service_account_create",
    "service_account_disable",
    "token_authenticate",
    "token_create",
    "token_revoke",
    "workspace_create",
    "workspace_delete",
    "workspace_manager_set",
    "workspace_update",
]

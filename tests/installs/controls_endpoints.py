"""Authorization-table rows of the install controls (see tests/orgs/marketplace_endpoints.py):
rules, the install policy, install requests, and the publisher's sandbox tenant.

The target tenant gets a deny rule, a pending request by its member ``target@…`` for its extension
``<slug>.target-ext``, and an extension ``<slug>.wanted-ext`` nobody installed or asked for (what
the table's callers ask for); withdrawing the target's request is not theirs (404)."""

from __future__ import annotations

from apps.extensions.models import Extension
from apps.installs.models import Installation, InstallPolicy, InstallRequest, InstallRule
from apps.orgs.models import Organization
from tests.orgs.endpoint import API, ORG, Endpoint  # noqa: F401

WANTED = "wanted-ext"  # an extension of the target tenant that nobody installed or asked for

ENDPOINTS: list[Endpoint] = [
    Endpoint("GET", f"{ORG}/install-rules", ("install_rule.view",)),
    Endpoint(
        "POST",
        f"{ORG}/install-rules",
        ("install_rule.manage",),
        ok=201,
        body={"kind": "scope", "effect": "deny", "value": "http:fetch:*", "note": "No outbound calls."},
    ),
    Endpoint("DELETE", f"{ORG}/install-rules/{{install_rule_id}}", ("install_rule.manage",), ok=204),
    Endpoint("GET", f"{ORG}/install-policy", ("install_rule.view",)),
    Endpoint(
        "PATCH",
        f"{ORG}/install-policy",
        ("install_rule.manage",),
        body={"mode": "allowlist", "requests_enabled": False},
    ),
    Endpoint("GET", f"{ORG}/install-requests", ("install_request.view",)),
    Endpoint(
        "POST",
        f"{ORG}/install-requests",
        ("install_request.create",),
        ok=201,
        users_only=True,
        body={"extension_key": f"acme.{WANTED}", "reason": "For the order workflow."},
    ),
    Endpoint(
        "POST",
        f"{ORG}/install-requests/{{install_request_id}}/decision",
        ("install_request.decide",),
        body={"decision": "deny", "note": "Not this quarter."},
    ),
    # Only the requester may withdraw: everyone else's request does not exist for them.
    Endpoint(
        "POST",
        f"{ORG}/install-requests/{{install_request_id}}/withdraw",
        ("install_request.create",),
        ok=404,
        users_only=True,
    ),
    Endpoint("GET", f"{ORG}/sandbox", ("extension.view",)),
]


def make_targets(tenant, targets) -> dict:
    org = tenant.org
    Extension.objects.create(org=org, key=f"{org.slug}.{WANTED}", name="Wanted")
    rule = InstallRule.objects.create(org=org, kind="scope", effect="deny", value="http:fetch:target.example")
    request = InstallRequest.objects.create(
        org=org, extension=targets.extension, requested_by=targets.member.user, reason="Target request."
    )
    return {"install_rule_id": rule.pk, "install_request_id": request.pk}


def snapshot(org) -> dict:
    return {
        "install_rules": list(InstallRule.objects.filter(org=org).order_by("pk").values()),
        "install_policy": list(InstallPolicy.objects.filter(org=org).values()),
        "install_requests": list(InstallRequest.objects.filter(org=org).order_by("pk").values()),
        "installation_statuses": list(
            Installation.objects.filter(org=org).order_by("pk").values_list("pk", "status", "status_reason")
        ),
        "sandbox": list(Organization.objects.filter(sandbox_of=org).values()),
    }


# Console pages (tests/orgs/test_tenant_isolation.py): another organisation's answer 404.
PORTAL_PAGES = ["install_rules", "install_requests", "install_request_new"]
PAGE_FORMS = {
    "install_rules": {"op": "add", "kind": "scope", "effect": "deny", "value": "kv:*"},
    "install_requests": {"op": "deny", "request": "irq_01JAAAAAAAAAAAAAAAAAAAAAAA", "note": "mole"},
    "install_request_new": {"extension": "ext_01JAAAAAAAAAAAAAAAAAAAAAAA", "reason": "mole"},
}
# A real id of another kind for each placeholder (tests/orgs/test_tenant_isolation.py).
OTHER_KIND = {
    "install_rule_id": lambda t: t.extra["install_request_id"],
    "install_request_id": lambda t: t.extra["install_rule_id"],
}


def fuzz_targets(tenant, ids) -> dict:
    """Real rows for the API fuzzer (tests/test_api_fuzz.py): a rule and a pending request."""
    org = tenant.org
    rule = InstallRule.objects.create(org=org, kind="scope", effect="deny", value="http:fetch:fuzz.example")
    request = InstallRequest.objects.create(
        org=org, extension_id=ids["extension_id"][0], requested_by=tenant.owner, reason="Fuzz target."
    )
    return {"install_rule_id": [rule.pk], "install_request_id": [request.pk]}

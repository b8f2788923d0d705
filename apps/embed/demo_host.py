"""The demo host product, served on its own origin in development (``PLAZA_DEMO_HOST_ORIGIN``):
an order page of "Globex Commerce" with two slots, whose server side starts a launch for a fixed
demo member of the organisation that registered this origin (seed_demo: the demo customer), the
way a real host's backend would with a token holding ``embed:launch``."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db.models import Q
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from apps.core.errors import PlazaError
from apps.embed.models import EmbedSettings
from apps.embed.services import launch_create
from apps.orgs.models import Membership, Role, ServiceAccount
from apps.orgs.policy import Principal

DEMO_ROLE = Role.MEMBER


def demo_org():
    """The organisation that registered the demo host origin (the first, by id)."""
    origin = settings.PLAZA_DEMO_HOST_ORIGIN
    for row in EmbedSettings.objects.select_related("org").order_by("org_id"):
        if origin in (row.host_origins or []):
            return row.org
    return None


@require_GET
def demo_host_page(request):
    org = demo_org()
    if org is None:
        return HttpResponse(
            "No organisation registered this demo host origin: run `manage.py seed_demo`.",
            status=503,
            content_type="text/plain; charset=utf-8",
        )
    role = request.GET.get("role", DEMO_ROLE)
    role = role if role in Role.values else DEMO_ROLE
    membership = (
        Membership.objects.select_related("user")
        .filter(org=org, role=role, deactivated_at__isnull=True)
        .order_by("id")
        .first()
    )
    # The host product's backend: the organisation's own admin service account (not an installation's).
    host = (
        ServiceAccount.objects.filter(org=org, disabled_at__isnull=True, role__in=[Role.OWNER, Role.ADMIN])
        .filter(Q(installation_id="") | Q(installation_id__isnull=True))
        .order_by("pk")
        .first()
    )
    if membership is None or host is None:
        return HttpResponse("The demo organisation has no such member or no admin service account.", status=503,
                            content_type="text/plain; charset=utf-8")  # fmt: skip
    principal = Principal(kind="service_account", service_account=host, scopes=frozenset({"embed:launch"}))
    try:
        launch = launch_create(
            principal=principal,
            org=org,
            user_id=membership.user_id,
            host_origin=settings.PLAZA_DEMO_HOST_ORIGIN,
            context={"order": {"id": "1001", "total": "249.00", "currency": "EUR"}, "page": "order"},
        )
    except PlazaError as exc:
        return HttpResponse(f"Could not start a launch: {exc.message}", status=503, content_type="text/plain")
    nonce = secrets.token_urlsafe(18)
    response = render(
        request,
        "embed/demo_host.html",
        {
            "launch": launch,
            "org": org,
            "member": membership.user,
            "role": role,
            "roles": Role.values,
            "plaza": settings.PLAZA_BASE_URL,
            "nonce": nonce,
        },
    )
    response["Cache-Control"] = "no-store"
    # The host's own policy: it frames widget origins only, and runs only Plaza's loader and its own script.
    response["Content-Security-Policy"] = (
        f"default-src 'self'; script-src 'nonce-{nonce}' {settings.PLAZA_BASE_URL}; "
        f"connect-src 'self' {settings.PLAZA_BASE_URL}; frame-src {_frame_src()}; style-src 'self' 'nonce-{nonce}'; "
        "img-src 'self' data:; base-uri 'none'; object-src 'none'; frame-ancestors 'none'"
    )
    return response


def _frame_src() -> str:
    scheme, _, rest = settings.PLAZA_WIDGET_ORIGIN.partition("://")
    return f"{scheme}://*.{rest}"

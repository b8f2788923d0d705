"""Pages: the e-mail-first "Continue with single sign-on" entry, and the console's SSO setup
(connection form, test connection with each check, enable/disable, routed domains, redirect URI)."""

from __future__ import annotations

from allauth.socialaccount.adapter import get_adapter as get_social_adapter
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from apps.core.errors import Conflict, PermissionDenied, ValidationFailed
from apps.core.http import safe_next
from apps.orgs.models import Role, SsoConnection
from apps.orgs.policy import authorize
from apps.orgs.portal import form_error, org_context, org_page
from apps.orgs.sso import services
from apps.orgs.sso.adapter import SESSION_BREAK_GLASS, SESSION_PROVIDER
from apps.orgs.sso.api import redirect_uri
from apps.orgs.sso.selectors import connection_for_email, verified_domain_names

_FIELDS = ("name", "issuer", "client_id", "client_secret", "scopes", "default_role")


@require_http_methods(["GET", "POST"])
def sso_start(request):
    """E-mail first: the address's domain picks the organisation whose IdP signs the person in."""
    email = (request.POST.get("email") or request.GET.get("email") or "").strip()[:254]
    next_url = safe_next(request, request.POST.get("next") or request.GET.get("next"), default="")
    error = ""
    if request.method == "POST":
        try:
            validate_email(email)
        except ValidationError:
            error = "Enter your work e-mail address."
        else:
            connection = connection_for_email(email)
            if connection is None:
                error = "Single sign-on is not set up for that e-mail domain. Sign in with your password instead."
            else:
                provider = get_social_adapter().get_provider(request, connection.provider_id)
                return provider.redirect(
                    request,
                    "login",
                    next_url=next_url or None,
                    auth_params={"login_hint": email},
                )
    ctx = {"email": email, "next": next_url, "error": error}
    return render(request, "orgs/sso/start.html", ctx, status=400 if error else 200)


def _role_choices() -> list[tuple[str, str]]:
    return [(value, label) for value, label in Role.choices if value != Role.OWNER]


@org_page("sso.view")
def sso_console(request, org, principal):
    connection = SsoConnection.objects.filter(org=org).first()
    error = None
    result = None
    if request.method == "POST":
        action = request.POST.get("action", "save")
        try:
            authorize(principal, "sso.manage", org)
            if action == "save":
                connection = services.sso_connection_save(
                    org=org,
                    name=request.POST.get("name", ""),
                    issuer=request.POST.get("issuer", ""),
                    client_id=request.POST.get("client_id", ""),
                    client_secret=request.POST.get("client_secret") or None,
                    scopes=request.POST.get("scopes", "openid email profile"),
                    default_role=request.POST.get("default_role", Role.MEMBER),
                )
                messages.success(request, "Saved. Test the connection before you enable it.")
                return redirect("sso_console", org_id=org.pk)
            if connection is None:
                raise ValidationFailed("Save the connection first.")
            if action == "test":
                result = services.sso_connection_test(connection=connection)
            elif action == "enable":
                services.sso_connection_enable(connection=connection)
                messages.success(request, "Single sign-on is on for your verified domains.")
                return redirect("sso_console", org_id=org.pk)
            elif action == "disable":
                services.sso_connection_disable(connection=connection)
                messages.success(request, "Single sign-on is off.")
                return redirect("sso_console", org_id=org.pk)
            elif action == "delete":
                services.sso_connection_delete(connection=connection)
                messages.success(request, "The connection was deleted.")
                return redirect("sso_console", org_id=org.pk)
            else:
                raise ValidationFailed("Unknown action.")
        except PermissionDenied as exc:
            return render(request, "errors/403.html", {"message": exc.message, "code": exc.code}, status=403)
        except (ValidationFailed, Conflict) as exc:
            error = form_error(exc, _FIELDS)
    checks = result.checks if result is not None else (services.checks_of(connection) if connection else [])
    ctx = org_context(
        request,
        org,
        principal,
        connection=connection,
        checks=checks,
        just_tested=result is not None,
        test_ok=result.ok if result is not None else (connection.last_test_ok if connection else None),
        error=error,
        form=request.POST if error and request.POST.get("action", "save") == "save" else None,
        roles=_role_choices(),
        routed_domains=verified_domain_names(org),
        redirect_uri=redirect_uri(connection or SsoConnection(org=org)),
        break_glass=org.pk in (request.session.get(SESSION_BREAK_GLASS) or []),
        signed_in_via_sso=request.session.get(SESSION_PROVIDER) == (connection.provider_id if connection else None),
    )
    template = "orgs/console/sso.html#test" if request.htmx and result is not None else "orgs/console/sso.html"
    return render(request, template, ctx, status=400 if error else 200)

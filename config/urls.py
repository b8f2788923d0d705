from django.urls import include, path

from apps.core.views import healthz, readyz
from config.api import api

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("api/v1/", api.urls),
    path("accounts/", include("apps.accounts.urls")),
    path("accounts/", include("allauth.urls")),
    path("", include("apps.audit.urls")),
    path("", include("apps.certification.urls")),
    path("", include("apps.events.urls")),
    path("", include("apps.extensions.urls")),
    path("", include("apps.orgs.urls")),
    path("", include("apps.orgs.sso.urls")),
    path("", include("apps.orgs.security.urls")),
    path("", include("apps.orgs.console.urls")),
    path("scim/v2/", include("apps.orgs.scim.urls")),
    path("", include("apps.orgs.scim.console_urls")),
    path("", include("apps.runtime.urls")),
    path("", include("apps.installs.urls")),
    path("", include("apps.installs.controls_urls")),
    path("", include("apps.listings.urls")),
    path("", include("apps.webhooks.urls")),
    path("", include("apps.billing.urls")),
    path("", include("apps.embed.urls")),
]

handler404 = "apps.core.handlers.not_found"
handler500 = "apps.core.handlers.server_error"

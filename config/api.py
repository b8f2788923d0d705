"""The one NinjaAPI, mounted at /api/v1/. Each app contributes a Router."""

from ninja import NinjaAPI

from apps.accounts.api import router as me_router
from apps.audit.api import router as audit_router
from apps.billing.api import router as billing_router
from apps.certification.api import router as certification_router
from apps.core.api import PlazaParser, install_exception_handlers
from apps.embed.api import router as embed_router
from apps.events.api import router as events_router
from apps.extensions.api import router as extensions_router
from apps.installs.api import router as installs_router
from apps.installs.controls_api import router as install_controls_router
from apps.listings.api import router as listings_router
from apps.orgs.api import router as orgs_router
from apps.orgs.auth import PlazaAuth
from apps.orgs.console.api import router as console_router
from apps.orgs.security.api import router as security_router
from apps.orgs.sso.api import router as sso_router
from apps.runtime.api import router as runtime_router
from apps.webhooks.api import router as webhooks_router

api = NinjaAPI(
    title="Plaza API",
    version="1.0.0",
    description="The Plaza REST API. Authenticate with `Authorization: Bearer plz_…`. Errors use one envelope "
    "and lists use cursor pagination: see docs/api.md.",
    auth=PlazaAuth(),
    urls_namespace="api",
    docs_url="/docs",
    openapi_url="/openapi.json",
    parser=PlazaParser(),
)
install_exception_handlers(api)
api.add_router("", me_router)
api.add_router("", orgs_router)
api.add_router("", sso_router)
api.add_router("", security_router)
api.add_router("", console_router)
api.add_router("", audit_router)
api.add_router("", extensions_router)
api.add_router("", events_router)
api.add_router("", runtime_router)
api.add_router("", certification_router)
api.add_router("", installs_router)
api.add_router("", install_controls_router)
api.add_router("", listings_router)
api.add_router("", webhooks_router)
api.add_router("", billing_router)
api.add_router("", embed_router)

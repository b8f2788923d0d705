"""Plaza settings. Every value comes from an environment variable (docs/configuration.md).

With no variables at all Plaza runs on one machine: SQLite under ``var/``, an in-process task
executor instead of a broker, a local-memory cache and e-mail printed to the console.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

PLAZA_ENV = env_str("PLAZA_ENV", "test" if "pytest" in sys.modules else "development")
if PLAZA_ENV not in {"development", "production", "test"}:
    raise ImproperlyConfigured(f"PLAZA_ENV must be development, production or test, got {PLAZA_ENV!r}")
IS_PRODUCTION = PLAZA_ENV == "production"
IS_TEST = PLAZA_ENV == "test"

DATA_DIR = Path(env_str("PLAZA_DATA_DIR", str(BASE_DIR / "var")))

_INSECURE_KEY = "plaza-insecure-development-key-do-not-use-in-production"
SECRET_KEY = env_str("SECRET_KEY", _INSECURE_KEY)
DEBUG = env_bool("DEBUG", PLAZA_ENV == "development")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [] if IS_PRODUCTION else ["localhost", "127.0.0.1", "[::1]", "testserver"])

if IS_PRODUCTION:
    problems = []
    if SECRET_KEY == _INSECURE_KEY or len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5:
        problems.append("SECRET_KEY must be set to a random value of at least 50 characters")
    if DEBUG:
        problems.append("DEBUG must be off")
    if not ALLOWED_HOSTS:
        problems.append("ALLOWED_HOSTS must name the hosts Plaza serves")
    elif "*" in ALLOWED_HOSTS:
        # Any Host header would be accepted, and e-mailed links (password reset) are built from it.
        problems.append("ALLOWED_HOSTS must name the hosts Plaza serves, not '*'")
    if not env_str("PLAZA_SIGNING_KEY", ""):
        # Derived from SECRET_KEY otherwise: rotating that would invalidate every countersignature.
        problems.append("PLAZA_SIGNING_KEY must be set (the base64 of 32 random bytes)")
    if problems:
        raise ImproperlyConfigured("Refusing to start in production mode: " + "; ".join(problems) + ".")

PLAZA_BASE_URL = env_str("PLAZA_BASE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "template_partials",
    "ninja",
    "guardian",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "django_otp_webauthn",  # passkeys as a second factor (apps/accounts/passkeys.py)
    "allauth",
    "allauth.account",
    "allauth.socialaccount",  # single sign-on (apps/orgs/sso)
    "allauth.socialaccount.providers.openid_connect",
    "apps.core",
    "apps.accounts",
    "apps.orgs",
    "apps.audit",
    "apps.events",
    "apps.extensions",
    "apps.runtime",
    "apps.certification",
    "apps.installs",
    "apps.webhooks",
    "apps.listings",
    "apps.billing",
    "apps.embed",
]

MIDDLEWARE = [
    "apps.core.middleware.RequestIdMiddleware",
    "apps.core.api.ApiErrorEnvelopeMiddleware",
    "apps.core.deprecation.DeprecationHeadersMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "apps.accounts.middleware.SessionTrackingMiddleware",
    "apps.accounts.middleware.MFARequiredMiddleware",
    "apps.orgs.security.middleware.OrgSessionPolicyMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "apps.orgs.context_processors.current_org",
            ],
        },
    }
]

# --- database -------------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL", "")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))}
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
else:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": DATA_DIR / "plaza.sqlite3",
            "OPTIONS": {
                # IMMEDIATE avoids "database is locked" upgrades when the web thread and the
                # embedded task executor write at once; WAL lets readers run beside a writer.
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- cache (rate limits, lockouts) ---------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            # Parallel test workers share one Redis: each keeps to its own prefix.
            "KEY_PREFIX": f"test-{env_str('PYTEST_XDIST_WORKER', 'main')}"
            if IS_TEST
            else env_str("CACHE_KEY_PREFIX", ""),
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "plaza"}}

# --- tasks -------------------------------------------------------------------------------------
# No broker configured: tasks run on the in-process executor (apps/core/executor.py), which keeps
# countdowns and retry delays exactly as a worker would. See docs/adr/0004-embedded-tasks.md.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "")
# Tests always use the embedded executor (manual mode) so they control time; the broker itself
# is exercised by tests/core/test_tasks.py, which starts a real worker when a broker is set.
PLAZA_TASKS_EMBEDDED = not CELERY_BROKER_URL or IS_TEST
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", "") or None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600)}
CELERY_TASK_DEFAULT_QUEUE = "plaza"
CELERY_BEAT_SCHEDULE: dict = {
    "sweep-sessions": {"task": "accounts.sweep_sessions", "schedule": env_int("PLAZA_SESSION_SWEEP_SECONDS", 3600)},
    # Certification runs whose task was lost or whose worker died (expired check leases) resume.
    "sweep-certification": {
        "task": "certification.sweep",
        "schedule": env_int("PLAZA_CERTIFICATION_SWEEP_SECONDS", 30),
    },
    # Releases whose apply task was lost still reach the installations following their channel.
    "sweep-releases": {"task": "installs.sweep_releases", "schedule": env_int("PLAZA_RELEASE_SWEEP_SECONDS", 300)},
}

# --- auth --------------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
    "guardian.backends.ObjectPermissionBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if IS_TEST:
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "home"
ACCOUNT_LOGOUT_REDIRECT_URL = "account_login"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_CONFIRM_EMAIL_ON_GET = False
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_LOGIN_ON_PASSWORD_RESET = False
ACCOUNT_PREVENT_ENUMERATION = True
ACCOUNT_SESSION_REMEMBER = None
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Plaza] "
# Guessing defence: per IP and per account (the account locks for 5 minutes after 5 failures).
ACCOUNT_RATE_LIMITS = {
    "login_failed": env_str("PLAZA_LOGIN_FAILED_LIMIT", "10/m/ip,5/5m/key"),
    "login": "30/m/ip",
    "signup": "20/m/ip",
    "reset_password": "20/m/ip,5/m/key",
    "confirm_email": "1/3m/key",
}
ACCOUNT_ADAPTER = "apps.accounts.adapter.AccountAdapter"

# --- single sign-on (apps/orgs/sso, docs/sso.md) ---------------------------------------------------
# One allauth openid_connect app per organisation, built at request time from its SsoConnection
# (provider id ``org-<org id>``): no rows in allauth's SocialApp table and no per-app settings here.
# Extends the accounts adapter: password sign-in refused for members of SSO-required orgs.
ACCOUNT_ADAPTER = "apps.orgs.sso.adapter.SsoAccountAdapter"
SOCIALACCOUNT_ADAPTER = "apps.orgs.sso.adapter.SsoSocialAccountAdapter"
SOCIALACCOUNT_PROVIDERS = {"openid_connect": {"OAUTH_PKCE_ENABLED": True}}  # and per app: always on
SOCIALACCOUNT_AUTO_SIGNUP = True
# Existing accounts are linked by an address verified on both sides (the adapter checks the rest).
SOCIALACCOUNT_EMAIL_AUTHENTICATION = True
SOCIALACCOUNT_EMAIL_AUTHENTICATION_AUTO_CONNECT = True
SOCIALACCOUNT_EMAIL_VERIFICATION = "mandatory"
SOCIALACCOUNT_STORE_TOKENS = False  # Plaza calls nothing on the IdP after sign-in
SOCIALACCOUNT_LOGIN_ON_GET = False  # the login URL needs a POST (no sign-in CSRF by link)
SOCIALACCOUNT_REQUESTS_TIMEOUT = 10
# --- end single sign-on ----------------------------------------------------------------------------
OTP_TOTP_ISSUER = env_str("PLAZA_TOTP_ISSUER", "Plaza")
OTP_TOTP_THROTTLE_FACTOR = 1
OTP_STATIC_THROTTLE_FACTOR = 1
PLAZA_MFA_MAX_ATTEMPTS = env_int("PLAZA_MFA_MAX_ATTEMPTS", 5)  # per 5 minutes per user


def _passkey_relying_party(base_url: str) -> tuple[str, str]:
    """The WebAuthn relying party id (the host) and origin of ``base_url``. Browsers refuse an IP
    address as relying party, so the loopback development default becomes ``localhost``."""
    parsed = urlsplit(base_url)
    host = parsed.hostname or "localhost"
    if host in ("127.0.0.1", "::1"):
        host = "localhost"
    port = f":{parsed.port}" if parsed.port else ""
    return host, f"{parsed.scheme}://{host}{port}"


# Passkeys (django-otp-webauthn) are a second factor only: no passwordless sign-in.
OTP_WEBAUTHN_RP_ID, _passkey_origin = _passkey_relying_party(PLAZA_BASE_URL)
OTP_WEBAUTHN_RP_NAME = env_str("PLAZA_PASSKEY_RP_NAME", "Plaza")
OTP_WEBAUTHN_ALLOWED_ORIGINS = [_passkey_origin]
OTP_WEBAUTHN_ALLOW_PASSWORDLESS_LOGIN = False
GUARDIAN_RAISE_403 = False
ANONYMOUS_USER_NAME = None

SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 14 * 24 * 3600)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# --- e-mail ------------------------------------------------------------------------------------
# Never the console by default in production: the mails carry password-reset, verification and
# invitation links, which would end up in the logs.
# Mail is queued (apps/core/mail.py) and delivered by a retried task with the backend below.
EMAIL_BACKEND = "apps.core.mail.QueuedEmailBackend"
PLAZA_EMAIL_DELIVERY_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.locmem.EmailBackend"
    if IS_TEST
    else "django.core.mail.backends.smtp.EmailBackend"
    if IS_PRODUCTION
    else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Plaza <no-reply@plaza.localhost>")

# --- static files ------------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
if not IS_PRODUCTION:
    STATIC_ROOT.mkdir(exist_ok=True)  # whitenoise warns about a missing directory otherwise
STATICFILES_DIRS = [BASE_DIR / "static"]


def _scratch_dir(name: str) -> str:
    """``DATA_DIR/<name>``; under test, a scratch directory of this process (never var/), removed at exit."""
    if IS_TEST:
        import atexit
        import shutil
        import tempfile

        path = tempfile.mkdtemp(prefix=f"plaza-{name}-")
        atexit.register(shutil.rmtree, path, ignore_errors=True)
        return path
    return str(DATA_DIR / name)


STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Extension packages, stored by SHA-256. Any Django storage backend works (S3 via django-storages…).
    "artifacts": {
        "BACKEND": env_str("PLAZA_ARTIFACT_STORAGE", "django.core.files.storage.FileSystemStorage"),
        "OPTIONS": {"location": env_str("PLAZA_ARTIFACT_ROOT", _scratch_dir("artifacts"))}
        if env_str("PLAZA_ARTIFACT_STORAGE", "") in ("", "django.core.files.storage.FileSystemStorage")
        else {},
    },
    # Listing icons and screenshots (apps/listings), re-encoded and stored by SHA-256.
    "listing_media": {
        "BACKEND": env_str("PLAZA_LISTING_MEDIA_STORAGE", "django.core.files.storage.FileSystemStorage"),
        "OPTIONS": {"location": env_str("PLAZA_LISTING_MEDIA_ROOT", _scratch_dir("listing-media"))}
        if env_str("PLAZA_LISTING_MEDIA_STORAGE", "") in ("", "django.core.files.storage.FileSystemStorage")
        else {},
    },
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if IS_PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = not IS_PRODUCTION

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- security ----------------------------------------------------------------------------------
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if IS_PRODUCTION:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    # __Host- cookies are bound to this exact host: a sibling subdomain cannot set or overwrite them
    # (planting a known CSRF cookie would defeat the CSRF check; planting a session fixes it).
    SESSION_COOKIE_NAME = "__Host-sessionid"
    CSRF_COOKIE_NAME = "__Host-csrftoken"
    if env_bool("PLAZA_BEHIND_PROXY", False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
PLAZA_TRUSTED_PROXY_HOPS = env_int("PLAZA_TRUSTED_PROXY_HOPS", 0)

# --- Plaza -------------------------------------------------------------------------------------
PLAZA_INVITATION_TTL_DAYS = env_int("PLAZA_INVITATION_TTL_DAYS", 7)
PLAZA_DNS_RESOLVER = env_str("PLAZA_DNS_RESOLVER", "apps.orgs.dns.DnsPythonResolver")
PLAZA_SIGNUP_OPEN = env_bool("PLAZA_SIGNUP_OPEN", True)
# API versions this deployment serves; a manifest's platform.api range must match one of them.
PLAZA_API_VERSIONS = env_list("PLAZA_API_VERSIONS", ["1.0.0"])
if not PLAZA_API_VERSIONS or not all(
    re.fullmatch(r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)", v) for v in PLAZA_API_VERSIONS
):
    raise ImproperlyConfigured(f"PLAZA_API_VERSIONS must list versions like 1.0.0, got {PLAZA_API_VERSIONS!r}")
# base64 of the 32-byte ed25519 seed the platform countersigns certified versions with.
# Empty: derived from SECRET_KEY (development only; `check --deploy` warns, plaza.W003).
PLAZA_SIGNING_KEY = env_str("PLAZA_SIGNING_KEY", "")
# After rotating PLAZA_SIGNING_KEY: the earlier public keys (base64 of 32 bytes, comma-separated),
# still published and accepted, so existing countersignatures stay valid.
PLAZA_SIGNING_KEYS_PREVIOUS = env_list("PLAZA_SIGNING_KEYS_PREVIOUS", [])
# Compiled WebAssembly modules, serialised per wasmtime version (a cache: safe to delete).
PLAZA_MODULE_CACHE_DIR = env_str("PLAZA_MODULE_CACHE_DIR", _scratch_dir("modules"))
# Let outbound fetches (sandbox http_fetch, apps/core/netguard.py) reach loopback, private and
# link-local addresses, and use plain http://. Local development only: never in production.
PLAZA_ALLOW_PRIVATE_NETWORKS = env_bool("PLAZA_ALLOW_PRIVATE_NETWORKS", False)
# Upload limits for extension packages (bytes).
PLAZA_PACKAGE_MAX_BYTES = env_int("PLAZA_PACKAGE_MAX_BYTES", 20 * 1024 * 1024)
# Any request body above this is refused with 413 before it is read (uploads stream to disk otherwise).
PLAZA_MAX_REQUEST_BYTES = env_int("PLAZA_MAX_REQUEST_BYTES", PLAZA_PACKAGE_MAX_BYTES + 1024 * 1024)

# --- certification (docs/certification.md) -------------------------------------------------------
# The checks every new run executes, in order (dotted paths of apps.certification.checks.Check classes).
PLAZA_CERTIFICATION_CHECKS = env_list(
    "PLAZA_CERTIFICATION_CHECKS",
    [
        "apps.certification.checks.manifest.ManifestCheck",
        "apps.certification.checks.signature.SignatureCheck",
        "apps.certification.checks.package.PackageCheck",
        "apps.certification.checks.sbom.SbomPolicyCheck",
        "apps.certification.checks.module_lint.ModuleLintCheck",
        "apps.certification.checks.smoke.SmokeCheck",
        "apps.certification.checks.abuse.AbuseCheck",
        "apps.certification.checks.widgets.WidgetCheck",
    ],
)
# --- installations (docs/installs.md) -----------------------------------------------------------
# What uninstall runs, in order: each app that keeps installation-bound data provides a cleaner
# (a function installation_id -> CleanupResult: purge, then count what remains).
PLAZA_INSTALL_CLEANERS = env_list(
    "PLAZA_INSTALL_CLEANERS",
    [
        "apps.installs.cleaners.installation_records",
        "apps.orgs.cleaners.installation_tokens",
        "apps.runtime.cleaners.installation_data",
        "apps.webhooks.cleaners.installation_deliveries",
    ],
)
# How many earlier versions of an installation stay one click away (their packages are kept and
# their modules precompiled, so a rollback never waits for a download or a compile).
PLAZA_INSTALL_ROLLBACK_VERSIONS = env_int("PLAZA_INSTALL_ROLLBACK_VERSIONS", 5)
# Lifetime of an installation access token a publisher's backend exchanges for (GitHub-app style).
PLAZA_INSTALLATION_TOKEN_MINUTES = env_int("PLAZA_INSTALLATION_TOKEN_MINUTES", 60)

# How long a worker holds a check before another may take it over (a dead worker's check resumes
# after this); checks are bounded by the sandbox limits, so this is far above any real duration.
PLAZA_CERTIFICATION_LEASE_SECONDS = env_int("PLAZA_CERTIFICATION_LEASE_SECONDS", 120)
# Largest WebAssembly module certification accepts (bytes).
PLAZA_MODULE_MAX_BYTES = env_int("PLAZA_MODULE_MAX_BYTES", 8 * 1024 * 1024)
# Words a listing's name, summary or description may not contain (case-insensitive, whole words).
PLAZA_BANNED_WORDS = env_list(
    "PLAZA_BANNED_WORDS", ["official", "verified", "hack", "crack", "keygen", "free money", "warez"]
)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "WARNING" if IS_TEST else "INFO")},
}

# --- event ingestion (apps/events, #8) -------------------------------------------------------------
# Limits of POST /api/v1/events and /api/v1/events/batch (docs/events.md, "Limits").
PLAZA_EVENTS_MAX_BODY_BYTES = env_int("PLAZA_EVENTS_MAX_BODY_BYTES", 256 * 1024)  # one event's request body
PLAZA_EVENTS_MAX_BATCH_BYTES = env_int("PLAZA_EVENTS_MAX_BATCH_BYTES", 2 * 1024 * 1024)  # a batch's body
PLAZA_EVENTS_MAX_AGE_DAYS = env_int("PLAZA_EVENTS_MAX_AGE_DAYS", 30)  # oldest occurred_at accepted
PLAZA_EVENTS_MAX_FUTURE_SECONDS = env_int("PLAZA_EVENTS_MAX_FUTURE_SECONDS", 300)  # clock skew allowed
# How long an Idempotency-Key's first answer is kept (and replayed).
PLAZA_IDEMPOTENCY_HOURS = env_int("PLAZA_IDEMPOTENCY_HOURS", 24)
CELERY_BEAT_SCHEDULE["purge-idempotency-records"] = {
    "task": "events.purge_idempotency_records",
    "schedule": env_int("PLAZA_IDEMPOTENCY_PURGE_SECONDS", 3600),
}
# --- end event ingestion ----------------------------------------------------------------------------

# --- webhook delivery (apps/webhooks, #8) ----------------------------------------------------------
# docs/webhooks.md and docs/configuration.md. Delays live in Message.next_attempt_at; Celery only
# carries "look for due messages".
# Seconds before attempt 1, 2, … (Svix's schedule): after the last, the message is failed (the DLQ).
PLAZA_WEBHOOK_RETRY_SCHEDULE = [
    float(s)
    for s in env_list("PLAZA_WEBHOOK_RETRY_SCHEDULE", ["0", "5", "300", "1800", "7200", "18000", "36000", "36000"])
]
# Each retry delay is spread by ± this fraction, so a failed burst does not come back as one burst.
PLAZA_WEBHOOK_RETRY_JITTER = env_int("PLAZA_WEBHOOK_RETRY_JITTER_PERCENT", 10) / 100
# A Retry-After on 429/503 is honoured up to this many seconds.
PLAZA_WEBHOOK_RETRY_AFTER_MAX_SECONDS = env_int("PLAZA_WEBHOOK_RETRY_AFTER_MAX_SECONDS", 3600)
PLAZA_WEBHOOK_CONNECT_TIMEOUT = env_int("PLAZA_WEBHOOK_CONNECT_TIMEOUT", 5)  # seconds to connect (TCP + TLS)
PLAZA_WEBHOOK_TIMEOUT = env_int("PLAZA_WEBHOOK_TIMEOUT", 15)  # seconds for the whole exchange
PLAZA_WEBHOOK_BATCH_SIZE = env_int("PLAZA_WEBHOOK_BATCH_SIZE", 200)  # messages claimed at once
PLAZA_WEBHOOK_CONCURRENCY = env_int("PLAZA_WEBHOOK_CONCURRENCY", 100)  # requests in flight per worker process
# A claimed message is another worker's again after this (its worker died): above the timeout.
PLAZA_WEBHOOK_LEASE_SECONDS = env_int("PLAZA_WEBHOOK_LEASE_SECONDS", 60)
# One deliver_due task sends for at most this long, then hands over to a new task.
PLAZA_WEBHOOK_TASK_BUDGET_SECONDS = env_int("PLAZA_WEBHOOK_TASK_BUDGET_SECONDS", 50)
# Circuit breaker: open after this many consecutive failures, probe again after the pause.
PLAZA_WEBHOOK_BREAKER_THRESHOLD = env_int("PLAZA_WEBHOOK_BREAKER_THRESHOLD", 10)
PLAZA_WEBHOOK_BREAKER_PAUSE_SECONDS = env_int("PLAZA_WEBHOOK_BREAKER_PAUSE_SECONDS", 60)
# Messages per second per endpoint (an endpoint's rate_limit_per_second overrides it).
PLAZA_WEBHOOK_RATE_LIMIT = env_int("PLAZA_WEBHOOK_RATE_LIMIT", 50)
# An endpoint failing without a success for this long is disabled and its publisher told.
PLAZA_WEBHOOK_DISABLE_AFTER_DAYS = env_int("PLAZA_WEBHOOK_DISABLE_AFTER_DAYS", 5)
# Fan-out: a dispatch row is another worker's again after this (its worker died).
PLAZA_WEBHOOK_DISPATCH_LEASE_SECONDS = env_int("PLAZA_WEBHOOK_DISPATCH_LEASE_SECONDS", 60)
# The sweep picks up dispatch rows older than this whose task was lost.
PLAZA_WEBHOOK_DISPATCH_GRACE_SECONDS = env_int("PLAZA_WEBHOOK_DISPATCH_GRACE_SECONDS", 5)
CELERY_BEAT_SCHEDULE["sweep-webhooks"] = {
    "task": "webhooks.sweep",
    "schedule": env_int("PLAZA_WEBHOOK_SWEEP_SECONDS", 10),
}
# Hooks run for an event a hook emitted only up to this depth of emitting hooks (services/hooks.py).
PLAZA_WEBHOOK_HOOK_CHAIN_MAX = env_int("PLAZA_WEBHOOK_HOOK_CHAIN_MAX", 3)
# Endpoints, replay and test events (apps/webhooks/services/{endpoints,replay}.py).
PLAZA_WEBHOOK_MAX_ENDPOINTS = env_int("PLAZA_WEBHOOK_MAX_ENDPOINTS", 20)  # per extension and environment
PLAZA_WEBHOOK_REPLAY_MAX_MESSAGES = env_int("PLAZA_WEBHOOK_REPLAY_MAX_MESSAGES", 10_000)  # per replay job
# Replayed (and backfilled) messages per endpoint per hour.
PLAZA_WEBHOOK_REPLAY_HOURLY_MESSAGES = env_int("PLAZA_WEBHOOK_REPLAY_HOURLY_MESSAGES", 50_000)
PLAZA_WEBHOOK_REPLAY_BATCH = env_int("PLAZA_WEBHOOK_REPLAY_BATCH", 500)  # messages a replay task step requeues
PLAZA_WEBHOOK_TEST_EVENTS_PER_HOUR = env_int("PLAZA_WEBHOOK_TEST_EVENTS_PER_HOUR", 60)  # per endpoint
# Restarts replay jobs whose task was lost.
CELERY_BEAT_SCHEDULE["webhooks.replay_sweep"] = {
    "task": "webhooks.replay_sweep",
    "schedule": env_int("PLAZA_WEBHOOK_REPLAY_SWEEP_SECONDS", 300),
}
# --- end webhook delivery ---------------------------------------------------------------------------


# --- embeds, delegated tokens, themes (apps/embed, #9) and entitlements (apps/billing) -------------
def _dev_origin(host: str) -> str:
    """``http://<host>:<port of PLAZA_BASE_URL>``: the development widget and demo host origins run on
    the same server as Plaza, under other host names (browsers resolve ``*.localhost`` to loopback)."""
    port = urlsplit(PLAZA_BASE_URL).port
    return f"http://{host}" + (f":{port}" if port else "")


def _origin_setting(name: str, default: str) -> str:
    """An exact ``scheme://host[:port]`` (lowercase, no path), or "" (off)."""
    value = env_str(name, default).strip().rstrip("/").lower()
    if value and not re.fullmatch(r"https?://[a-z0-9.-]+(?::\d{1,5})?", value):
        raise ImproperlyConfigured(f"{name} must be an origin like https://widgets.example.com, got {value!r}")
    return value


# The base origin widgets are served from: each installation's widgets get their own origin below it
# (``<scheme>://inst-<id>.<host>[:port]``, apps/embed/origins.py), so widgets of different extensions
# on one page are never same-origin siblings. Needs wildcard DNS (and a wildcard certificate) in production.
PLAZA_WIDGET_ORIGIN = _origin_setting("PLAZA_WIDGET_ORIGIN", "" if IS_PRODUCTION else _dev_origin("widgets.localhost"))
# The demo host product (apps/embed/demo_host.py); off ("") by default in production.
PLAZA_DEMO_HOST_ORIGIN = _origin_setting(
    "PLAZA_DEMO_HOST_ORIGIN", "" if IS_PRODUCTION else _dev_origin("host.localhost")
)
# Lifetime of a delegated token (seconds), kept within 60-300.
PLAZA_EMBED_TOKEN_SECONDS = min(300, max(60, env_int("PLAZA_EMBED_TOKEN_SECONDS", 120)))
# Lifetime of a launch (the host page's session with Plaza's embeds), in minutes.
PLAZA_EMBED_LAUNCH_MINUTES = min(24 * 60, max(1, env_int("PLAZA_EMBED_LAUNCH_MINUTES", 60)))
# base64 of 32 random bytes: the ES256 (P-256) key delegated tokens are signed with. Empty: derived
# from SECRET_KEY (development and test only; production refuses to start without it).
PLAZA_EMBED_TOKEN_KEY = env_str("PLAZA_EMBED_TOKEN_KEY", "")
# After rotating PLAZA_EMBED_TOKEN_KEY: the earlier keys (the old values), still published in the
# JWKS so tokens signed with them verify until they expire. Never used to sign.
PLAZA_EMBED_TOKEN_KEYS_PREVIOUS = env_list("PLAZA_EMBED_TOKEN_KEYS_PREVIOUS", [])
if IS_PRODUCTION and PLAZA_WIDGET_ORIGIN and not PLAZA_EMBED_TOKEN_KEY:
    # Embeds are on: a token key derived from SECRET_KEY would change (and invalidate tokens) with it.
    raise ImproperlyConfigured(
        "Refusing to start in production mode: PLAZA_EMBED_TOKEN_KEY must be set (the base64 of 32 random bytes)."
    )
if (
    IS_PRODUCTION
    and PLAZA_WIDGET_ORIGIN
    and urlsplit(PLAZA_WIDGET_ORIGIN).hostname == urlsplit(PLAZA_BASE_URL).hostname
):
    raise ImproperlyConfigured(
        "Refusing to start in production mode: PLAZA_WIDGET_ORIGIN must differ from PLAZA_BASE_URL."
    )
if IS_PRODUCTION and PLAZA_WIDGET_ORIGIN:
    _widget_host, _plaza_host = urlsplit(PLAZA_WIDGET_ORIGIN).hostname, urlsplit(PLAZA_BASE_URL).hostname or ""
    if not PLAZA_WIDGET_ORIGIN.startswith("https://"):
        raise ImproperlyConfigured("Refusing to start in production mode: PLAZA_WIDGET_ORIGIN must use https://.")
    if _widget_host.endswith("." + _plaza_host) or _plaza_host.endswith("." + _widget_host):
        # Widgets run extension code: under Plaza's own host name they could set cookies Plaza reads.
        raise ImproperlyConfigured(
            "Refusing to start in production mode: PLAZA_WIDGET_ORIGIN must not be a subdomain of "
            "PLAZA_BASE_URL's host (or its parent): use a separate domain, e.g. https://plaza-widgets.example.net."
        )
if IS_PRODUCTION and PLAZA_DEMO_HOST_ORIGIN:
    # The demo host starts launches (delegated tokens for a member, any role) for anyone who asks.
    raise ImproperlyConfigured(
        "Refusing to start in production mode: PLAZA_DEMO_HOST_ORIGIN is for development only (leave it empty)."
    )
# Widget and demo hosts are Plaza's own: admit them (every installation's subdomain of the widget host).
for _origin in (PLAZA_WIDGET_ORIGIN, PLAZA_DEMO_HOST_ORIGIN):
    if _origin and "*" not in ALLOWED_HOSTS:
        _host = urlsplit(_origin).hostname
        ALLOWED_HOSTS += [h for h in (_host, "." + _host if _origin == PLAZA_WIDGET_ORIGIN else "") if h]
# Host routing (widget origins serve only /w/, the demo host only /demo-host/) and CORS for embeds.
MIDDLEWARE.insert(
    MIDDLEWARE.index("apps.core.api.ApiErrorEnvelopeMiddleware"), "apps.embed.middleware.EmbedHostMiddleware"
)
# Bearer tokens other than plz_ that the API accepts (apps/orgs/auth.py): dotted paths of functions
# (request, raw token) -> Principal | None, tried in order. Delegated tokens of embedded widgets:
PLAZA_BEARER_AUTHENTICATORS = env_list("PLAZA_BEARER_AUTHENTICATORS", ["apps.embed.tokens.authenticate_bearer"])
# Uninstall removes the installation's entitlement grants too.
PLAZA_INSTALL_CLEANERS += [
    c for c in ["apps.billing.cleaners.installation_entitlements"] if c not in PLAZA_INSTALL_CLEANERS
]
# Demo data of apps above listings, for seed_demo (modules with seed_versions and seed_after).
PLAZA_DEMO_SEEDERS = ["apps.embed.demo"]
# Expired launches are deleted a day after they expire.
CELERY_BEAT_SCHEDULE["sweep-launches"] = {
    "task": "embed.sweep_launches",
    "schedule": env_int("PLAZA_LAUNCH_SWEEP_SECONDS", 3600),
}
# --- end embeds -------------------------------------------------------------------------------------

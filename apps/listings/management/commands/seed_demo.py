"""Idempotent demo data: a publisher org, a customer org and the platform (staff) org, one user per
role, API tokens, the event catalog, the publisher's demo extensions (certified by the real
pipeline, served on stable, listed in the storefront), and the customer's installation and review.

It lives in the highest app that has demo data to add (layers below never import upward)."""

from __future__ import annotations

import base64
import time
from importlib import import_module

from allauth.account.models import EmailAddress
from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import connection, transaction

from apps.accounts.models import User
from apps.audit.models import AuditEvent
from apps.audit.services import audit_record
from apps.core import context
from apps.core.crypto import secret_hash
from apps.events.catalog_sync import sync_catalog
from apps.extensions import services as extension_services
from apps.extensions.demo import demo_private_key
from apps.extensions.models import Channel, ExtensionVersion, VersionStatus
from apps.listings.demo import seed_demo_listings, seed_demo_versions
from apps.orgs import services
from apps.orgs.models import ApiToken, Organization, Role, ServiceAccount
from apps.orgs.policy import SCOPES, Principal
from apps.orgs.services.provisioning import scim_token_issue

DEMO_PASSWORD = "plaza-demo-password"
ORGS = [
    ("acme-extensions", "Acme Extensions", "publisher"),
    ("globex", "Globex Corporation", "customer"),
    ("plaza-platform", "Plaza Platform", "platform staff"),
]
DEMO_TOKEN_SCOPES = sorted(SCOPES)


def demo_token_secret(slug: str) -> str:
    """A stable, well-known demo secret per org, so re-running prints the same token. Demo only:
    seed_demo refuses to run in production."""
    return f"plz_demo_{slug.replace('-', '_')}_{secret_hash(settings.SECRET_KEY + slug)[:24]}"


class Command(BaseCommand):
    help = "Create (or refresh) demo organisations, users and API tokens, and print how to try them."

    def handle(self, *args, **options):
        if settings.IS_PRODUCTION:
            self.stderr.write("seed_demo creates known passwords and tokens; it does not run in production.")
            raise SystemExit(2)
        out = []
        self.scim_tokens: dict[str, str] = {}
        with context.bind(actor_type="system", actor_label="seed_demo"), transaction.atomic():
            for slug, name, kind in ORGS:
                org, users, token = self._org(slug, name, kind)
                out.append((org, kind, users, token))
            platform = out[2][0]
            if not Organization.objects.filter(is_platform=True).exists():
                platform.is_platform = True
                platform.save(update_fields=["is_platform"])
            sync_catalog(platform_org=Organization.objects.get(is_platform=True))
            versions = seed_demo_versions(out[0][0])
            # Apps above this one add their demo data through PLAZA_DEMO_SEEDERS (modules with
            # seed_versions(publisher) and seed_after(publisher, customer, customer_admin)).
            seeders = [import_module(path) for path in settings.PLAZA_DEMO_SEEDERS]
            for seeder in seeders:
                versions += seeder.seed_versions(out[0][0])
        versions = [self._certified(version) for version in versions]
        if not connection.in_atomic_block:
            customer_owner = Organization.objects.get(slug="globex").memberships.get(role=Role.OWNER).user
            with context.bind(actor_type="system", actor_label="seed_demo"):
                seed_demo_listings(out[0][0], out[1][0], customer_owner)
                for seeder in seeders:
                    seeder.seed_after(out[0][0], out[1][0], customer_owner)
        self._print(out)
        for version in versions:
            self.stdout.write(f"Demo extension: {version.extension.key} {version.version} ({version.status})")
        seed = base64.b64encode(demo_private_key().private_bytes_raw()).decode()
        self.stdout.write(f"Demo signing key (private seed, base64; demo only): {seed}")
        self.stdout.write(f"Storefront: {settings.PLAZA_BASE_URL}/marketplace/")
        if settings.PLAZA_DEMO_HOST_ORIGIN:
            self.stdout.write(f"Demo host with embedded widgets: {settings.PLAZA_DEMO_HOST_ORIGIN}/demo-host/")

    def _certified(self, version: ExtensionVersion, wait_seconds: float = 60.0) -> ExtensionVersion:
        """Wait for the demo version's certification (the submit started it: in-process by default,
        on a worker when a broker is configured), then serve it on the stable channel."""
        if connection.in_atomic_block:
            return version  # inside a caller's transaction (tests): the submit has not committed yet
        deadline = time.monotonic() + wait_seconds
        while version.status in (VersionStatus.SUBMITTED, VersionStatus.CERTIFYING) and time.monotonic() < deadline:
            time.sleep(0.2)
            version.refresh_from_db(fields=["status", "status_reason", "countersignature"])
        if version.status == VersionStatus.CERTIFIED:
            robot = Principal(kind="user", user=None, mfa_verified=True)
            with context.bind(actor_type="system", actor_label="seed_demo"):
                extension_services.version_promote(principal=robot, version=version, channel=Channel.STABLE)
            version.refresh_from_db(fields=["status"])
        return version

    def _user(self, email: str, name: str) -> User:
        user = User.objects.filter(email=email).first()
        if user is None:
            user = User.objects.create_user(email=email, password=DEMO_PASSWORD, name=name)
        EmailAddress.objects.update_or_create(user=user, email=email, defaults={"verified": True, "primary": True})
        return user

    def _org(self, slug: str, name: str, kind: str):
        owner = self._user(f"owner@{slug}.example", f"{name} Owner")
        org = Organization.objects.filter(slug=slug).first()
        if org is None:
            org = services.org_create(user=owner, name=name, slug=slug)
        users = []
        for role in Role.values:
            user = owner if role == Role.OWNER else self._user(f"{role}@{slug}.example", f"{name} {role.title()}")
            services.member_add(org=org, user=user, role=role)
            users.append((role, user.email))
        sa = ServiceAccount.objects.filter(org=org, name="demo-automation").first()
        principal = Principal(kind="user", user=owner, mfa_verified=True)
        if sa is None:
            sa = services.service_account_create(
                principal=principal,
                org=org,
                name="demo-automation",
                description="Created by seed_demo",
                role=Role.ADMIN,
            )
        secret = demo_token_secret(slug)
        if not ApiToken.objects.filter(token_hash=secret_hash(secret)).exists():
            # A stable demo secret, so every run prints a working token.
            services.token_create(
                principal=principal,
                service_account=sa,
                name="demo token",
                scopes=DEMO_TOKEN_SCOPES,
                expires_in_days=None,
                secret=secret,
            )
        if kind == "customer":
            scim_secret = demo_token_secret(f"{slug}-scim")
            if not ApiToken.objects.filter(token_hash=secret_hash(scim_secret)).exists():
                scim_token_issue(principal=principal, org=org, name="demo SCIM token", secret=scim_secret,
                                 expires_in_days=None)  # fmt: skip
            self.scim_tokens[org.pk] = scim_secret
        if not AuditEvent.objects.filter(org_id=org.pk, action="demo.seeded").exists():
            audit_record(action="demo.seeded", org_id=org.pk, target=org)
        return org, users, secret

    def _print(self, out) -> None:
        base = settings.PLAZA_BASE_URL
        w = self.stdout.write
        w("")
        w(self.style.SUCCESS(f"Plaza demo data is ready. Open {base}/"))
        w(f"Every demo user's password: {DEMO_PASSWORD}")
        for org, kind, users, token in out:
            w("")
            w(self.style.MIGRATE_HEADING(f"{org.name} ({kind} organisation, id {org.pk})"))
            for role, email in users:
                w(f"  {role:<10} {email}")
            w(f"  API token  {token}")
            w(f"             scopes: {' '.join(DEMO_TOKEN_SCOPES)}")
            w(f"  try:       curl -H 'Authorization: Bearer {token}' {base}/api/v1/orgs/{org.pk}/members")
            if org.pk in self.scim_tokens:
                scim = self.scim_tokens[org.pk]
                w(f"  SCIM token {scim}   (scope scim:write; base URL {base}/scim/v2/)")
                w(f"  try:       curl -H 'Authorization: Bearer {scim}' {base}/scim/v2/Users")
        w("")
        w(f"API reference: {base}/api/v1/docs")

"""Deployment checks of Plaza's own settings (``manage.py check --deploy``)."""

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security, deploy=True)
def plaza_deploy_checks(app_configs, **kwargs):
    problems = []
    if not settings.PLAZA_BASE_URL.startswith("https://"):
        problems.append(
            Warning(
                f"PLAZA_BASE_URL is {settings.PLAZA_BASE_URL!r}: links in e-mails (invitations, password "
                "resets) must use the public https:// address.",
                id="plaza.W001",
            )
        )
    if getattr(settings, "SECURE_PROXY_SSL_HEADER", None) and settings.PLAZA_TRUSTED_PROXY_HOPS == 0:
        problems.append(
            Warning(
                "PLAZA_BEHIND_PROXY is on but PLAZA_TRUSTED_PROXY_HOPS is 0: every client appears with the "
                "proxy's address, so IP allowlists and audit IPs see the proxy. Set the number of proxies.",
                id="plaza.W002",
            )
        )
    return problems

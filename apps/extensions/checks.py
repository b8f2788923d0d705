"""System checks: the platform's signing keys must load, or countersigning and the published key
list would fail at request time."""

from django.core.checks import Error, register
from django.core.exceptions import ImproperlyConfigured


@register()
def signing_keys_load(app_configs, **kwargs):
    from apps.extensions import signing

    try:
        signing.platform_public_keys()
    except ImproperlyConfigured as exc:
        return [Error(str(exc), id="plaza.E001")]
    return []

"""The platform's default SBOM policy: permissive licences allowed, network-copyleft licences denied,
and one known-compromised release denied as an example of a component rule. A copy of
``apps.certification.sbom_policy.DEFAULT_RULES`` as it was when this migration was written
(migrations must not import app code, which changes over time)."""

from django.db import migrations

_PERMISSIVE = "Permissive licence."
_COPYLEFT = "Network copyleft: it would oblige every merchant running the extension to publish source code."

DEFAULT_RULES = [
    {"effect": "allow", "license": "MIT", "reason": _PERMISSIVE},
    {"effect": "allow", "license": "Apache-2.0", "reason": _PERMISSIVE},
    {"effect": "allow", "license": "BSD-2-Clause", "reason": _PERMISSIVE},
    {"effect": "allow", "license": "BSD-3-Clause", "reason": _PERMISSIVE},
    {"effect": "allow", "license": "ISC", "reason": _PERMISSIVE},
    {"effect": "allow", "license": "0BSD", "reason": _PERMISSIVE},
    {"effect": "allow", "license": "Zlib", "reason": _PERMISSIVE},
    {"effect": "allow", "license": "Unlicense", "reason": _PERMISSIVE},
    {"effect": "allow", "license": "MPL-2.0", "reason": _PERMISSIVE},
    {"effect": "allow", "license": "CC0-1.0", "reason": _PERMISSIVE},
    {"effect": "allow", "license": "BSL-1.0", "reason": _PERMISSIVE},
    {"effect": "allow", "license": "Python-2.0", "reason": _PERMISSIVE},
    {"effect": "deny", "license": "AGPL-3.0-only", "reason": _COPYLEFT},
    {"effect": "deny", "license": "AGPL-3.0-or-later", "reason": _COPYLEFT},
    {"effect": "deny", "license": "SSPL-1.0", "reason": _COPYLEFT},
    {
        "effect": "deny",
        "name": "event-stream",
        "version_range": "3.3.6",
        "reason": "Compromised release (November 2018): it pulls in flatmap-stream, which steals bitcoin wallets.",
    },
]


def _lookup(rule: dict) -> dict:
    return {
        "org": None,
        "effect": rule["effect"],
        "name": rule.get("name", ""),
        "version_range": rule.get("version_range", ""),
        "license": rule.get("license", ""),
    }


def forwards(apps, schema_editor):
    SbomRule = apps.get_model("certification", "SbomRule")
    for rule in DEFAULT_RULES:
        # Re-applying after a partial rollback must not duplicate a rule.
        if not SbomRule.objects.filter(**_lookup(rule)).exists():
            SbomRule(**_lookup(rule), reason=rule["reason"]).save()


def backwards(apps, schema_editor):
    SbomRule = apps.get_model("certification", "SbomRule")
    for rule in DEFAULT_RULES:
        SbomRule.objects.filter(**_lookup(rule)).delete()


class Migration(migrations.Migration):
    dependencies = [("certification", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards)]

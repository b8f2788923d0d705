"""The publisher's signature over the stored bytes, and the key that made it.

Upload verified the signature once; certification verifies it again over the artifact as it is
stored now (storage could have been tampered with) and refuses keys revoked since."""

from __future__ import annotations

import hashlib

from apps.certification.checks import ERROR, INFO, Check, CheckContext, CheckOutcome, Finding
from apps.core.errors import ValidationFailed
from apps.extensions import signing
from apps.extensions.models import KeyStatus


class SignatureCheck(Check):
    id = "signature"
    version = 1
    title = "Signature and signing key"

    def run(self, ctx: CheckContext) -> CheckOutcome:
        version = ctx.version
        key = version.signing_key
        findings: list[Finding] = []
        stored = hashlib.sha256(ctx.package_bytes).hexdigest()
        measurements = {"key_id": key.pk, "fingerprint": key.fingerprint, "sha256": version.package_sha256}
        if stored != version.package_sha256:
            findings.append(
                Finding(
                    "signature.digest_mismatch",
                    ERROR,
                    f"The stored package hashes to sha256:{stored}, not the uploaded sha256:{version.package_sha256}.",
                    "package",
                    "Upload the package again as a new version; tell platform support (storage changed under it).",
                )
            )
        if key.org_id != version.extension.org_id:
            findings.append(
                Finding(
                    "signature.key_foreign",
                    ERROR,
                    f"The key {key.fingerprint} does not belong to the publisher of this extension.",
                    "key_id",
                    "Sign with one of your organisation's own registered keys.",
                )
            )
        if key.status == KeyStatus.REVOKED:
            findings.append(
                Finding(
                    "signature.key_revoked",
                    ERROR,
                    f"The key {key.fingerprint} that signed this version was revoked"
                    + (f" ({key.revoke_reason})." if key.revoke_reason else "."),
                    "key_id",
                    "Register a new key, sign the package with it and upload a new version.",
                )
            )
        elif key.status == KeyStatus.RETIRED:
            findings.append(
                Finding(
                    "signature.key_retired",
                    INFO,
                    f"The key {key.fingerprint} was rotated out after signing this version.",
                    "key_id",
                    "Nothing to do for this version; sign the next one with the key's successor.",
                )
            )
        try:
            signing.verify_package_signature(signing.parse_public_key(key.public_key), stored, version.signature)
        except ValidationFailed as exc:
            findings.append(
                Finding(
                    "signature.invalid",
                    ERROR,
                    exc.message,
                    "signature",
                    "Sign the exact bytes you upload: `plaza sign` signs sha256 of the zip with your ed25519 key.",
                )
            )
        summary = (
            "The signature or its key cannot be trusted."
            if any(f.severity == ERROR for f in findings)
            else f"Signed by {key.name} ({key.fingerprint}) over sha256:{stored[:12]}…; the signature verifies."
        )
        return CheckOutcome(summary, findings, measurements)

"""A software passkey for server-side tests: answers django-otp-webauthn's registration and
authentication options the way a platform authenticator would (ES256, "none" attestation), so the
ceremonies run through the real endpoints and py_webauthn's verification without a browser."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

ORIGIN = "http://localhost:8000"
RP_ID = "localhost"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class SoftPasskey:
    def __init__(self, *, origin: str = ORIGIN, rp_id: str = RP_ID):
        self.origin, self.rp_id = origin, rp_id
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = os.urandom(32)
        self.user_handle = b""
        self.sign_count = 0

    def _client_data(self, kind: str, challenge: str) -> bytes:
        return json.dumps({"type": kind, "challenge": challenge, "origin": self.origin, "crossOrigin": False}).encode()

    def _cose_public_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return cbor2.dumps({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")})

    def register(self, options: dict) -> dict:
        """The browser's answer to registration ``options`` (the begin endpoint's JSON)."""
        assert options["rp"]["id"] == self.rp_id
        self.user_handle = base64.urlsafe_b64decode(options["user"]["id"] + "==")
        client_data = self._client_data("webauthn.create", options["challenge"])
        attested = bytes(16) + struct.pack(">H", len(self.credential_id)) + self.credential_id + self._cose_public_key()
        flags = 0x01 | 0x04 | 0x40  # user present, user verified, attested credential data
        auth_data = hashlib.sha256(self.rp_id.encode()).digest() + bytes([flags]) + struct.pack(">I", 0) + attested
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return {
            "id": b64url(self.credential_id),
            "rawId": b64url(self.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64url(client_data),
                "attestationObject": b64url(attestation),
                "transports": ["internal"],
            },
            "clientExtensionResults": {"credProps": {"rk": True}},
            "authenticatorAttachment": "platform",
        }

    def authenticate(self, options: dict, *, key: ec.EllipticCurvePrivateKey | None = None) -> dict:
        """The browser's answer to authentication ``options``; ``key`` signs instead of this
        passkey's own key (a forged assertion)."""
        assert options["rpId"] == self.rp_id
        self.sign_count += 1
        client_data = self._client_data("webauthn.get", options["challenge"])
        auth_data = (
            hashlib.sha256(self.rp_id.encode()).digest() + bytes([0x01 | 0x04]) + struct.pack(">I", self.sign_count)
        )
        signature = (key or self.key).sign(auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256()))
        return {
            "id": b64url(self.credential_id),
            "rawId": b64url(self.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64url(client_data),
                "authenticatorData": b64url(auth_data),
                "signature": b64url(signature),
                "userHandle": b64url(self.user_handle),
            },
            "clientExtensionResults": {},
            "authenticatorAttachment": "platform",
        }


def register_passkey(client, passkey: SoftPasskey):
    """Run the registration ceremony for ``client``'s user; returns the complete endpoint's response."""
    options = client.post("/accounts/mfa/passkeys/registration/begin/")
    assert options.status_code == 200, options.content[:300]
    return client.post(
        "/accounts/mfa/passkeys/registration/complete/",
        data=json.dumps(passkey.register(options.json())),
        content_type="application/json",
    )


def verify_with_passkey(client, passkey: SoftPasskey, *, next_url: str = "", **kwargs):
    """Run the sign-in ceremony for ``client``'s half-signed-in session; returns the complete endpoint's response."""
    options = client.post("/accounts/mfa/passkeys/authentication/begin/")
    assert options.status_code == 200, options.content[:300]
    query = f"?next={next_url}" if next_url else ""
    return client.post(
        f"/accounts/mfa/passkeys/authentication/complete/{query}",
        data=json.dumps(passkey.authenticate(options.json(), **kwargs)),
        content_type="application/json",
    )

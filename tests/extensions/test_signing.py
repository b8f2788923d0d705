"""Publisher keys in the forms people have them, package signatures, and the platform's countersignature."""

from __future__ import annotations

import base64
import hashlib
import shutil
import struct
import subprocess

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from apps.core.errors import ValidationFailed
from apps.extensions import signing

SEED = bytes(range(32))
PRIVATE = Ed25519PrivateKey.from_private_bytes(SEED)
RAW = signing.public_key_raw(PRIVATE.public_key())
DIGEST = hashlib.sha256(b"package bytes").hexdigest()
OTHER_DIGEST = hashlib.sha256(b"other bytes").hexdigest()


@pytest.fixture(autouse=True)
def _fresh_platform_key():
    signing.clear_platform_key_cache()
    yield
    signing.clear_platform_key_cache()


def pem(key) -> str:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def openssh(key) -> str:
    return key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


# --- parsing keys ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        pem(PRIVATE.public_key()),
        "\n  " + pem(PRIVATE.public_key()) + "\n\n",
        base64.b64encode(RAW).decode(),
        base64.b64encode(RAW).decode().rstrip("="),
        base64.urlsafe_b64encode(RAW).decode(),
        base64.urlsafe_b64encode(RAW).decode().rstrip("="),
        openssh(PRIVATE.public_key()),
        openssh(PRIVATE.public_key()) + " alice@laptop",
        openssh(PRIVATE.public_key()) + " two word comment\n",
    ],
)
def test_accepted_key_formats(text):
    assert signing.public_key_raw(signing.parse_public_key(text)) == RAW


def test_urlsafe_alphabet_matters():
    """A key whose base64 uses + and / round-trips through the URL-safe alphabet too."""
    key = next(
        k
        for k in (Ed25519PrivateKey.generate().public_key() for _ in range(200))
        if set(base64.b64encode(signing.public_key_raw(k)).decode()) & {"+", "/"}
    )
    raw = signing.public_key_raw(key)
    assert signing.public_key_raw(signing.parse_public_key(base64.urlsafe_b64encode(raw).decode())) == raw


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (pem(rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()), "RSA"),
        (pem(ec.generate_private_key(ec.SECP256R1()).public_key()), "EC"),
        (pem(ed448.Ed448PrivateKey.generate().public_key()), "Ed448"),
        (openssh(rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()), "ssh-rsa"),
        (openssh(ec.generate_private_key(ec.SECP256R1()).public_key()), "ecdsa"),
        (base64.b64encode(RAW[:31]).decode(), "31 bytes"),
        (base64.b64encode(RAW + b"\0").decode(), "33 bytes"),
        ("not a key at all!", "not in a recognised format"),
        ("", "empty"),
        ("   ", "empty"),
        ("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "PEM block"),
        ("ssh-ed25519", "malformed"),
        ("ssh-ed25519 AAAAnotbase64!!", "malformed"),
        ("ssh-ed25519 " + base64.b64encode(b"\0\0\0\x07ssh-rsa" + bytes(40)).decode(), "malformed"),
        (
            PRIVATE.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ).decode(),
            "private key",
        ),
    ],
)
def test_refused_keys(text, words):
    with pytest.raises(ValidationFailed) as caught:
        signing.parse_public_key(text)
    error = caught.value
    assert error.code == "signing_key_invalid" and error.param == "public_key"
    assert words in error.message
    assert "PEM" in error.message and "ssh-ed25519" in error.message and "32-byte" in error.message


def test_non_string_key_refused():
    with pytest.raises(ValidationFailed):
        signing.parse_public_key(None)


# --- fingerprints ---------------------------------------------------------------------------------


def test_fingerprint_format():
    fingerprint = signing.key_fingerprint(PRIVATE.public_key())
    assert fingerprint.startswith("SHA256:") and "=" not in fingerprint
    assert len(base64.b64decode(fingerprint.removeprefix("SHA256:") + "=")) == 32
    assert signing.key_fingerprint(PRIVATE) == fingerprint  # a private key gives its public half's
    blob = struct.pack(">I", 11) + b"ssh-ed25519" + struct.pack(">I", 32) + RAW
    assert fingerprint == "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs ssh-keygen")
def test_fingerprint_matches_ssh_keygen(tmp_path):
    (tmp_path / "key.pub").write_text(openssh(PRIVATE.public_key()) + " test\n")
    output = subprocess.run(
        ["ssh-keygen", "-l", "-E", "sha256", "-f", str(tmp_path / "key.pub")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert output.split()[1] == signing.key_fingerprint(PRIVATE.public_key())


# --- package signatures ---------------------------------------------------------------------------


def test_package_message():
    assert signing.package_message(DIGEST.upper()) == b"plaza-package-v1\nsha256:" + DIGEST.encode()
    for bad in ("abc", "g" * 64, DIGEST + "0", None):
        with pytest.raises(ValueError):
            signing.package_message(bad)


def test_sign_and_verify():
    signature = signing.sign_package(PRIVATE, DIGEST)
    assert len(base64.b64decode(signature)) == 64
    signing.verify_package_signature(PRIVATE.public_key(), DIGEST, signature)
    signing.verify_package_signature(PRIVATE.public_key(), DIGEST.upper(), signature)
    raw = base64.b64decode(signature)
    for variant in (signature.rstrip("="), base64.urlsafe_b64encode(raw).decode(), f"  {signature}\n"):
        signing.verify_package_signature(PRIVATE.public_key(), DIGEST, variant)


def _invalid(key, digest, signature) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as caught:
        signing.verify_package_signature(key, digest, signature)
    assert caught.value.param == "signature"
    return caught.value


def test_signature_for_another_digest_refused():
    error = _invalid(PRIVATE.public_key(), OTHER_DIGEST, signing.sign_package(PRIVATE, DIGEST))
    assert error.code == "signature_invalid"
    assert OTHER_DIGEST in error.message and signing.key_fingerprint(PRIVATE) in error.message


def test_signature_by_another_key_refused():
    other = Ed25519PrivateKey.generate()
    assert _invalid(PRIVATE.public_key(), DIGEST, signing.sign_package(other, DIGEST)).code == "signature_invalid"


@pytest.mark.parametrize("bit", [0, 7, 100, 511])
def test_bit_flipped_signature_refused(bit):
    raw = bytearray(base64.b64decode(signing.sign_package(PRIVATE, DIGEST)))
    raw[bit // 8] ^= 1 << (bit % 8)
    assert _invalid(PRIVATE.public_key(), DIGEST, base64.b64encode(raw).decode()).code == "signature_invalid"


def test_signature_without_context_refused():
    """A signature over the bare digest (no context line) must not pass: it could have been made for anything."""
    bare = base64.b64encode(PRIVATE.sign(bytes.fromhex(DIGEST))).decode()
    assert _invalid(PRIVATE.public_key(), DIGEST, bare).code == "signature_invalid"


@pytest.mark.parametrize(
    "signature",
    ["", "not base64!", "AAAA", base64.b64encode(bytes(63)).decode(), base64.b64encode(bytes(65)).decode(), "A", None],
)
def test_malformed_signature_refused(signature):
    assert _invalid(PRIVATE.public_key(), DIGEST, signature).code == "signature_malformed"


# --- countersignature -----------------------------------------------------------------------------

FIELDS = {
    "extension_id": "acme.hello",
    "version": "1.2.3",
    "digest_hex": DIGEST,
    "publisher_signature": signing.sign_package(PRIVATE, DIGEST),
}


def test_countersignature_message():
    message = signing.countersignature_message(**FIELDS)
    assert message == (
        b"plaza-countersignature-v1\nacme.hello\n1.2.3\n"
        + DIGEST.encode()
        + b"\n"
        + FIELDS["publisher_signature"].encode()
    )
    with pytest.raises(ValueError):
        signing.countersignature_message(**{**FIELDS, "version": "1.2.3\nacme.evil"})
    with pytest.raises(ValueError):
        signing.countersignature_message(**{**FIELDS, "digest_hex": "abc"})


def test_countersignature_round_trip():
    countersignature = signing.countersign(**FIELDS)
    assert set(countersignature) == {"key_id", "algorithm", "signature"}
    assert countersignature["algorithm"] == "ed25519"
    assert countersignature["key_id"] == signing.platform_key_id()
    assert signing.verify_countersignature(countersignature, **FIELDS)
    assert signing.verify_countersignature(countersignature, **{**FIELDS, "digest_hex": DIGEST.upper()})


@pytest.mark.parametrize(
    "changes",
    [
        {"extension_id": "acme.other"},
        {"version": "1.2.4"},
        {"digest_hex": OTHER_DIGEST},
        {"publisher_signature": signing.sign_package(PRIVATE, OTHER_DIGEST)},
        {"version": "1.2.3\n"},
    ],
)
def test_countersignature_mismatch_on_any_field(changes):
    countersignature = signing.countersign(**FIELDS)
    assert not signing.verify_countersignature(countersignature, **{**FIELDS, **changes})


@pytest.mark.parametrize(
    "tamper",
    [
        lambda c: {**c, "key_id": "SHA256:someone-else"},
        lambda c: {**c, "algorithm": "rsa"},
        lambda c: {**c, "signature": "garbage"},
        lambda c: {**c, "signature": None},
        lambda c: {k: v for k, v in c.items() if k != "signature"},
        lambda c: None,
        lambda c: "a string",
    ],
)
def test_tampered_countersignature(tamper):
    assert not signing.verify_countersignature(tamper(signing.countersign(**FIELDS)), **FIELDS)


# --- the platform key -----------------------------------------------------------------------------


def test_platform_key_stable_for_a_secret_key(settings):
    settings.PLAZA_SIGNING_KEY = ""
    settings.SECRET_KEY = "first-secret-" * 5
    first = signing.platform_key_id()
    signing.clear_platform_key_cache()
    assert signing.platform_key_id() == first
    countersignature = signing.countersign(**FIELDS)

    settings.SECRET_KEY = "second-secret-" * 5
    signing.clear_platform_key_cache()
    assert signing.platform_key_id() != first
    assert not signing.verify_countersignature(countersignature, **FIELDS)  # signed by the old key

    settings.SECRET_KEY = "first-secret-" * 5
    assert signing.platform_key_id() == first
    assert signing.verify_countersignature(countersignature, **FIELDS)


def test_platform_key_from_setting(settings):
    settings.PLAZA_SIGNING_KEY = base64.b64encode(SEED).decode()
    assert signing.platform_key_id() == signing.key_fingerprint(PRIVATE)
    settings.SECRET_KEY = "something-else-entirely-" * 3
    assert signing.platform_key_id() == signing.key_fingerprint(PRIVATE)  # the setting wins over SECRET_KEY
    countersignature = signing.countersign(**FIELDS)
    PRIVATE.public_key().verify(
        base64.b64decode(countersignature["signature"]), signing.countersignature_message(**FIELDS)
    )


def test_platform_key_without_setting_attribute(settings):
    if hasattr(settings, "PLAZA_SIGNING_KEY"):
        del settings.PLAZA_SIGNING_KEY
    settings.SECRET_KEY = "no-setting-" * 6
    assert signing.platform_key_id().startswith("SHA256:")


@pytest.mark.parametrize("value", ["not base64!", base64.b64encode(bytes(31)).decode()])
def test_bad_signing_key_setting(settings, value):
    from django.core.exceptions import ImproperlyConfigured

    settings.PLAZA_SIGNING_KEY = value
    with pytest.raises(ImproperlyConfigured):
        signing.platform_private_key()


def test_platform_public_keys(settings):
    settings.PLAZA_SIGNING_KEY = base64.b64encode(SEED).decode()
    (published,) = signing.platform_public_keys()
    assert published == {
        "key_id": signing.key_fingerprint(PRIVATE),
        "algorithm": "ed25519",
        "public_key": base64.b64encode(RAW).decode(),
        "status": "current",
    }
    # What is published is enough to check a countersignature with nothing but the published key.
    key = signing.parse_public_key(published["public_key"])
    countersignature = signing.countersign(**FIELDS)
    key.verify(base64.b64decode(countersignature["signature"]), signing.countersignature_message(**FIELDS))

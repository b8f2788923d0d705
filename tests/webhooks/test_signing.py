"""Standard Webhooks signing, checked against the independent ``standardwebhooks`` package."""

from __future__ import annotations

import base64
import time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from apps.webhooks import signing


def test_secret_is_whsec_and_32_random_bytes():
    secret = signing.secret_generate()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret[len("whsec_") :])) == 32
    assert signing.secret_generate() != secret


def test_signature_verifies_with_the_standardwebhooks_library():
    secret = signing.secret_generate()
    body = b'{"type":"order.created","data":{"n":1}}'
    headers = signing.headers_for([secret], "msg_1", body)
    assert Webhook(secret).verify(body, headers) == {"type": "order.created", "data": {"n": 1}}


def test_sign_matches_the_library_byte_for_byte():
    secret = signing.secret_generate()
    ts = int(time.time())
    from datetime import UTC, datetime

    expected = Webhook(secret).sign("msg_2", datetime.fromtimestamp(ts, tz=UTC), '{"a":1}')
    assert signing.sign(secret, "msg_2", ts, b'{"a":1}') == expected


def test_rotation_two_secrets_each_verifies():
    old, new = signing.secret_generate(), signing.secret_generate()
    body = '{"type":"x"}'
    headers = signing.headers_for([new, old], "msg_3", body)
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert Webhook(old).verify(body, headers) == {"type": "x"}
    assert Webhook(new).verify(body, headers) == {"type": "x"}
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.secret_generate()).verify(body, headers)


def test_altered_body_or_id_is_refused():
    secret = signing.secret_generate()
    headers = signing.headers_for([secret], "msg_4", b'{"a":1}')
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(b'{"a":2}', headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(b'{"a":1}', {**headers, "webhook-id": "msg_5"})
    with pytest.raises(signing.SignatureError):
        signing.verify(secret, {**headers, "webhook-id": "msg_5"}, b'{"a":1}')


def test_own_verify_checks_tolerance_and_accepts_rotation():
    old, new = signing.secret_generate(), signing.secret_generate()
    headers = signing.headers_for([new, old], "msg_6", b"{}", timestamp=1_000_000)
    signing.verify(old, headers, b"{}", now=1_000_100)
    with pytest.raises(signing.SignatureError, match="tolerance"):
        signing.verify(old, headers, b"{}", now=1_000_000 + 301)
    with pytest.raises(signing.SignatureError, match="missing"):
        signing.verify(old, {}, b"{}")


@pytest.mark.parametrize("bad", ["whsec_", "whsec_!!!", "whsec_" + base64.b64encode(b"short").decode()])
def test_invalid_secrets_are_refused(bad):
    with pytest.raises(signing.SignatureError):
        signing.sign(bad, "msg", 1, b"")

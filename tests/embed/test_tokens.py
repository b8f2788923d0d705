"""Delegated tokens: claims, scopes = installation grants ∩ the person's permissions, lifetime,
verification with PyJWT against the JWKS, audience and expiry, and Plaza's API accepting them
for exactly the scopes they carry."""

from __future__ import annotations

import base64
import datetime as dt
import json

import jwt
import pytest
from django.test import Client

from apps.core import clock
from apps.embed import keys
from apps.embed.tokens import pairwise_subject, verify
from apps.orgs.models import Role
from tests.conftest import ApiClient
from tests.embed.conftest import HOST


def mint(launch_id: str, installation_id, origin: str | None = HOST, body=None):
    extra = {"HTTP_ORIGIN": origin} if origin is not None else {}
    payload = json.dumps(body if body is not None else {"installation_id": installation_id})
    return Client().post(f"/embed/v1/launches/{launch_id}/tokens", payload, content_type="application/json", **extra)


def token_for(shop, user, installation) -> str:
    res = mint(shop.launch(user), installation.pk)
    assert res.status_code == 200, res.content
    return res.json()["token"]


def jwk_set():
    res = Client().get("/.well-known/jwks.json")
    assert res.status_code == 200
    return res.json(), jwt.PyJWKSet.from_dict(res.json())


def decode(token: str, audience: str, **kwargs) -> dict:
    _, key_set = jwk_set()
    kid = jwt.get_unverified_header(token)["kid"]
    key = next(k for k in key_set.keys if k.key_id == kid)
    from django.conf import settings

    return jwt.decode(token, key.key, algorithms=["ES256"], audience=audience, issuer=settings.PLAZA_BASE_URL, **kwargs)


def test_token_answer_and_claims(shop, bob):
    res = mint(shop.launch(bob), shop.notes.pk)
    assert res.status_code == 200, res.content
    assert res["Access-Control-Allow-Origin"] == HOST and res["Cache-Control"] == "no-store"
    body = res.json()
    assert set(body) == {"token", "expires_at", "expires_in", "scope"}
    assert body["expires_in"] == 120 and body["expires_at"].endswith("Z")
    header = jwt.get_unverified_header(body["token"])
    assert header["alg"] == "ES256" and header["kid"] == keys.current_kid()
    claims = decode(body["token"], audience=shop.notes.extension_id)
    assert claims["aud"] == shop.notes.extension_id
    assert claims["inst"] == shop.notes.pk and claims["org"] == shop.org.pk
    assert claims["exp"] - claims["iat"] == 120
    assert claims["jti"] and claims["sub"].startswith("pu_")
    assert bob.pk not in json.dumps(claims)  # the person's Plaza id never leaves sealed
    assert claims["sub"] == pairwise_subject(bob.pk, shop.notes.extension_id)
    assert claims["sub"] != pairwise_subject(bob.pk, shop.points.extension_id)


def test_token_body_never_in_url_and_jwks_has_no_private_parts(shop, bob):
    document, _ = jwk_set()
    assert all("d" not in key for key in document["keys"])
    assert document["keys"][0] == {**document["keys"][0], "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig"}


@pytest.mark.parametrize(
    ("role", "notes_scope", "points_scope"),
    [
        (Role.MEMBER, "members:read org:read", "org:read"),
        (Role.ADMIN, "audit:read members:read org:read", "org:read"),
        (Role.OWNER, "audit:read members:read org:read", "org:read"),
    ],
)
def test_scope_is_grants_intersected_with_the_persons_permissions(shop, role, notes_scope, points_scope):
    user = shop.tenant.user(role)
    launch_id = shop.launch(user)
    assert mint(launch_id, shop.notes.pk).json()["scope"] == notes_scope
    assert mint(launch_id, shop.points.pk).json()["scope"] == points_scope


def test_scope_drops_what_the_installation_no_longer_grants(shop, bob):
    shop.notes.granted_scopes = [s for s in shop.notes.granted_scopes if s != "api:members:read"]
    shop.notes.save(update_fields=["granted_scopes"])
    assert mint(shop.launch(bob), shop.notes.pk).json()["scope"] == "org:read"


@pytest.mark.parametrize(("configured", "expected"), [(30, 60), (200, 200), (1000, 300)])
def test_lifetime_is_kept_within_60_and_300_seconds(shop, bob, settings, configured, expected):
    settings.PLAZA_EMBED_TOKEN_SECONDS = configured
    body = mint(shop.launch(bob), shop.notes.pk).json()
    claims = decode(body["token"], audience=shop.notes.extension_id)
    assert body["expires_in"] == expected and claims["exp"] - claims["iat"] == expected


def test_token_of_extension_a_is_refused_for_extension_b(shop, bob):
    token = token_for(shop, bob, shop.notes)
    with pytest.raises(jwt.InvalidAudienceError):
        decode(token, audience=shop.points.extension_id)
    assert verify(token, audience=shop.points.extension_id) is None
    assert verify(token, audience=shop.notes.extension_id) is not None


def test_expired_token_is_refused_by_pyjwt_and_by_plaza(shop, bob, monkeypatch):
    past = clock.now() - dt.timedelta(minutes=10)
    monkeypatch.setattr(clock, "now", lambda: past)
    launch_id = shop.launch(bob)
    token = mint(launch_id, shop.notes.pk).json()["token"]
    monkeypatch.undo()
    with pytest.raises(jwt.ExpiredSignatureError):
        decode(token, audience=shop.notes.extension_id)
    res = ApiClient(token).call("GET", f"orgs/{shop.org.pk}/members")
    assert res.status_code == 401


def test_api_accepts_a_delegated_token_for_its_scopes_only(shop, bob):
    notes = ApiClient(token_for(shop, bob, shop.notes))
    assert notes.call("GET", f"orgs/{shop.org.pk}/members").status_code == 200
    assert notes.call("GET", f"orgs/{shop.org.pk}").status_code == 200
    # bob is a member: no audit:read in his token even though the installation was granted it
    assert notes.call("GET", f"orgs/{shop.org.pk}/audit-events").status_code == 403
    points = ApiClient(token_for(shop, bob, shop.points))
    res = points.call("GET", f"orgs/{shop.org.pk}/members")
    assert res.status_code == 403 and res.json()["error"]["code"] == "missing_scope"
    me = notes.call("GET", "me").json()
    assert me["kind"] == "service_account" and me["org_id"] == shop.org.pk


def test_admin_token_reaches_audit_but_nothing_beyond_installation_actions(shop):
    admin = shop.tenant.user(Role.ADMIN)
    client = ApiClient(token_for(shop, admin, shop.notes))
    assert client.call("GET", f"orgs/{shop.org.pk}/audit-events").status_code == 200
    assert client.call("GET", f"orgs/{shop.org.pk}/invitations").status_code in (403, 404)
    res = client.call("PATCH", f"orgs/{shop.org.pk}", {"name": "Hijacked"})
    assert res.status_code == 403


def test_delegated_token_never_reaches_another_tenant(shop, globex, bob):
    client = ApiClient(token_for(shop, bob, shop.notes))
    assert client.call("GET", f"orgs/{globex.org.pk}/members").status_code == 404
    assert client.call("GET", f"orgs/{globex.org.pk}").status_code == 404


def test_token_stops_working_when_installation_or_membership_ends(shop, bob):
    token = token_for(shop, bob, shop.notes)
    client = ApiClient(token)
    assert client.call("GET", f"orgs/{shop.org.pk}").status_code == 200
    bob.memberships.filter(org=shop.org).update(deactivated_at=clock.now())
    assert client.call("GET", f"orgs/{shop.org.pk}").status_code == 401
    bob.memberships.filter(org=shop.org).update(deactivated_at=None)
    shop.notes.status = "blocked"
    shop.notes.save(update_fields=["status"])
    assert client.call("GET", f"orgs/{shop.org.pk}").status_code == 401


def _tamper(token: str) -> list[str]:
    head, body, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["scope"] = "org:read members:read audit:read tokens:write"
    forged_body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    none_head = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    hs_token = jwt.encode(claims, "secret", algorithm="HS256", headers={"kid": jwt.get_unverified_header(token)["kid"]})
    return [f"{head}.{forged_body}.{sig}", f"{none_head}.{body}.", hs_token, token[:-4] + "AAAA", "a.b.c", "x" * 5000]


def test_forged_tokens_are_refused(shop, bob):
    token = token_for(shop, bob, shop.notes)
    for forged in _tamper(token):
        res = ApiClient(forged).call("GET", f"orgs/{shop.org.pk}")
        assert res.status_code == 401, forged[:40]


def test_rotation_keeps_the_previous_key_published(shop, bob, settings):
    old_token = token_for(shop, bob, shop.notes)
    old_kid = keys.current_kid()
    # the test key is derived from SECRET_KEY: publish its public point as the previous key
    numbers = keys.private_key().public_key().public_numbers()
    point = b"\x04" + numbers.x.to_bytes(32, "big") + numbers.y.to_bytes(32, "big")
    settings.PLAZA_EMBED_TOKEN_KEYS_PREVIOUS = [base64.b64encode(point).decode()]
    settings.PLAZA_EMBED_TOKEN_KEY = base64.b64encode(b"k" * 32).decode()
    new_kid = keys.current_kid()
    assert new_kid != old_kid
    document, _ = jwk_set()
    assert [k["kid"] for k in document["keys"]] == [new_kid, old_kid]
    assert decode(old_token, audience=shop.notes.extension_id)["inst"] == shop.notes.pk
    assert ApiClient(old_token).call("GET", f"orgs/{shop.org.pk}").status_code == 200
    new_token = token_for(shop, bob, shop.notes)
    assert jwt.get_unverified_header(new_token)["kid"] == new_kid
    settings.PLAZA_EMBED_TOKEN_KEYS_PREVIOUS = []
    assert ApiClient(old_token).call("GET", f"orgs/{shop.org.pk}").status_code == 401


def test_token_issue_refusals(shop, bob, globex, vendor):
    from tests.embed.conftest import install, release_widget

    launch_id = shop.launch(bob)
    assert mint(launch_id, shop.notes.pk, origin=None).status_code == 403
    assert mint(launch_id, shop.notes.pk, origin="https://evil.test").status_code == 403
    other = install(globex.org, globex.owner, release_widget(vendor, "elsewhere"))
    assert mint(launch_id, other.pk).status_code == 404
    for body in ({}, {"installation_id": 5}, {"installation_id": "inst_x"}, [1], "x"):
        res = mint(launch_id, None, body=body)
        assert 400 <= res.status_code < 500, body
    res = Client().post(f"/embed/v1/launches/{launch_id}/tokens", b"\xff{", content_type="application/json",
                        HTTP_ORIGIN=HOST)  # fmt: skip
    assert res.status_code == 400
    res = Client().get(f"/embed/v1/launches/{launch_id}/tokens", HTTP_ORIGIN=HOST)
    assert res.status_code == 405

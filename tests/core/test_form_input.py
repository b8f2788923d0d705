"""Text no database column can hold (NUL, lone surrogates) and bare-word ``next`` URLs in the
portal's forms: each is a clear refusal, never a 500 (PostgreSQL raises on NUL in text). Found by
probing the portal's forms."""

from __future__ import annotations

import pytest

from apps.extensions.models import Extension
from apps.orgs.models import Role, SsoConnection
from tests.extensions.conftest import event_catalog, publisher  # noqa: F401  (fixtures)


@pytest.mark.parametrize("value", ["\x00", "a\x00b", "\x07"])
def test_portal_forms_refuse_unstorable_text_without_changing_anything(acme, login_client, value):
    client = login_client(acme.user(Role.OWNER))
    res = client.post(f"/orgs/{acme.org.pk}/extensions/", {"name": "ok-name", "display_name": value})
    assert res.status_code == 400 and b"control characters" in res.content
    assert not Extension.objects.filter(org=acme.org).exists()
    res = client.post("/accounts/sessions/", {"op": "end", "session": value})
    assert res.status_code in (200, 302)
    sso = {"action": "save", "name": "SSO", "issuer": "https://idp.example.com", "client_id": value}
    res = client.post(f"/orgs/{acme.org.pk}/console/sso/", sso)
    assert res.status_code in (200, 400) and not SsoConnection.objects.filter(org=acme.org).exists()


def test_an_upload_with_a_broken_key_id_is_refused_clearly(publisher):  # noqa: F811
    res = publisher.upload(key_id="key_\x00")
    assert res.status_code == 400 and res.json()["error"]["code"] in ("signing_key_unknown", "validation_error")


@pytest.mark.parametrize("next_url", ["on", "owner", "mem_01", "2024-13-45T99:99", "a b"])
def test_the_mfa_prompt_treats_a_bare_word_next_as_no_next(db, client, next_url):
    from tests.factories import UserFactory

    client.force_login(UserFactory())
    res = client.get("/accounts/mfa/verify/", {"next": next_url})
    assert res.status_code == 302 and res["Location"] == "/"

"""Publisher pages: extensions, uploads with manifest problems shown in place, versions, keys."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.extensions.models import Extension, ExtensionVersion, SigningKey
from apps.extensions.signing import sign_package
from tests.extensions.conftest import manifest, package_bytes, public_b64

pytestmark = pytest.mark.django_db


def _form(publisher, doc=None, **overrides) -> dict:
    data = package_bytes(doc or manifest())
    form = {
        "package": SimpleUploadedFile("ext.zip", data, content_type="application/zip"),
        "key_id": publisher.key.pk,
        "signature": sign_package(publisher.private, hashlib.sha256(data).hexdigest()),
        "channel": "stable",
    }
    form.update(overrides)
    return form


def test_empty_states_and_creating_an_extension(acme, login_client):
    web = login_client(acme.user("developer"))
    page = web.get(f"/orgs/{acme.org.pk}/extensions/")
    assert page.status_code == 200 and "No extensions yet" in page.content.decode()
    res = web.post(f"/orgs/{acme.org.pk}/extensions/", {"name": "Bad Name"})
    assert res.status_code == 400 and 'id="name-error"' in res.content.decode()
    res = web.post(f"/orgs/{acme.org.pk}/extensions/", {"name": "tagger", "display_name": "Tagger"})
    ext = Extension.objects.get(key="acme.tagger")
    assert res.status_code == 302 and res["Location"] == f"/orgs/{acme.org.pk}/extensions/{ext.pk}/"
    assert "No versions yet" in web.get(res["Location"]).content.decode()


def test_manifest_problems_are_shown_under_their_lines(publisher, login_client, acme):
    web = login_client(acme.user("developer"))
    url = f"/orgs/{acme.org.pk}/extensions/{publisher.extension.pk}/"
    res = web.post(url, _form(publisher, manifest(version="1.0", scopes=["kv:admin"])))
    html = res.content.decode()
    assert res.status_code == 400
    assert "The manifest has 3 problems" in html
    # each message sits in the line block of the value it concerns
    version_line = html[html.index("&quot;version&quot;: &quot;1.0&quot;") :]
    assert version_line.index("$.version") < version_line.index("</div>")
    scope_line = html[html.index("&quot;kv:admin&quot;") :]
    assert scope_line.index("$.scopes[0]") < scope_line.index("</div>")
    assert ExtensionVersion.objects.count() == 0


def test_form_field_errors_sit_next_to_their_field(publisher, login_client, acme):
    web = login_client(acme.user("developer"))
    url = f"/orgs/{acme.org.pk}/extensions/{publisher.extension.pk}/"
    res = web.post(url, _form(publisher, signature="AAAA"))
    assert res.status_code == 400 and 'id="signature-error"' in res.content.decode()
    form = _form(publisher)
    del form["package"]
    res = web.post(url, form)
    assert res.status_code == 400 and 'id="package-error"' in res.content.decode()


def test_upload_then_submit_from_the_version_page(publisher, login_client, acme):
    web = login_client(acme.user("developer"))
    res = web.post(f"/orgs/{acme.org.pk}/extensions/{publisher.extension.pk}/", _form(publisher))
    assert res.status_code == 302
    version = ExtensionVersion.objects.get()
    page = web.get(res["Location"]).content.decode()
    assert "Submit for certification" in page and "Receive &#x27;order.created&#x27; events" in page
    assert web.post(res["Location"]).status_code == 302
    version.refresh_from_db()
    assert version.status == "submitted"
    assert "Submit for certification" not in web.get(res["Location"]).content.decode()


def test_members_see_but_cannot_upload(publisher, login_client, acme):
    web = login_client(acme.user("member"))
    url = f"/orgs/{acme.org.pk}/extensions/{publisher.extension.pk}/"
    page = web.get(url).content.decode()
    assert "Upload a version" not in page
    assert web.post(url, _form(publisher)).status_code == 403
    assert ExtensionVersion.objects.count() == 0


def test_outsiders_get_404(publisher, login_client, globex):
    web = login_client(globex.owner)
    for url in (
        f"/orgs/{publisher.org.pk}/extensions/",
        f"/orgs/{publisher.org.pk}/extensions/{publisher.extension.pk}/",
        f"/orgs/{globex.org.pk}/extensions/{publisher.extension.pk}/",
        f"/orgs/{publisher.org.pk}/signing-keys/",
    ):
        assert web.get(url).status_code == 404, url


def test_keys_register_rotate_and_revoke(publisher, login_client, acme):
    web = login_client(acme.owner)
    url = f"/orgs/{acme.org.pk}/signing-keys/"
    res = web.post(url, {"op": "register", "name": "k", "public_key": "nonsense"})
    assert res.status_code == 400 and 'id="public_key-error"' in res.content.decode()
    new = Ed25519PrivateKey.generate()
    res = web.post(url, {"op": "rotate", "key": publisher.key.pk, "name": "next", "public_key": public_b64(new)})
    assert res.status_code == 302
    publisher.key.refresh_from_db()
    assert publisher.key.status == "retired"
    successor = SigningKey.objects.get(name="next")
    assert web.post(url, {"op": "revoke", "key": successor.pk, "reason": "lost laptop"}).status_code == 302
    page = web.get(url).content.decode()
    assert "lost laptop" in page and "retired" in page


def test_the_manifest_checker(acme, login_client):
    web = login_client(acme.owner)
    assert web.get("/tools/manifest/").status_code == 200
    res = web.post("/tools/manifest/", {"manifest": "{not json"})
    assert res.status_code == 400 and "Not JSON" in res.content.decode()
    res = web.post("/tools/manifest/", {"manifest": '{"id": "Acme"}'})
    assert "&#x27;name&#x27; is required" in res.content.decode()
    assert web.get("/tools/manifest/").status_code == 200


@pytest.mark.parametrize(
    "source", ['{"name": "\\ud800", "\\ud800x": 1}', "[" * 5000 + "]" * 5000, '{"a": ' * 3000 + "1" + "}" * 3000]
)
def test_the_manifest_checker_survives_hostile_json(acme, login_client, source):
    res = login_client(acme.owner).post("/tools/manifest/", {"manifest": source})
    assert res.status_code in (200, 400)

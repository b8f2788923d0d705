import re
from io import StringIO

from django.core.management import call_command

from apps.accounts.models import User
from apps.audit.services import audit_verify
from apps.events.models import EventType
from apps.extensions.models import ExtensionVersion
from apps.extensions.storage import read_artifact
from apps.orgs.models import ApiToken, Membership, Organization
from tests.conftest import ApiClient


def _seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def test_seed_demo_is_idempotent_and_prints_working_tokens(db):
    first, second = _seed(), _seed()
    # three tenants, and the publisher's sandbox tenant (made with its first extension)
    assert Organization.objects.filter(sandbox_of__isnull=True).count() == 3
    assert Organization.objects.get(sandbox_of__isnull=False).sandbox_of.slug == "acme-extensions"
    assert Organization.objects.get(is_platform=True).slug == "plaza-platform"
    assert Membership.objects.count() == 15 and User.objects.count() == 15
    assert ApiToken.objects.count() == 4  # one API token per org, and the customer's SCIM token
    tokens = re.findall(r"API token\s+(plz_\S+)", second)
    assert tokens == re.findall(r"API token\s+(plz_\S+)", first) and len(tokens) == 3
    # the event catalog, and the publisher's signed, submitted demo version
    assert EventType.objects.filter(name="order.created").exists()
    # the demo storefront's five extensions and the two demo widget extensions (apps/embed/demo/)
    assert ExtensionVersion.objects.filter(status="submitted").count() == 7
    version = ExtensionVersion.objects.get(extension__key="acme-extensions.order-tagger")
    assert version.extension.key == "acme-extensions.order-tagger" and version.status == "submitted"
    assert read_artifact(version.package_sha256)
    assert "Demo extension: acme-extensions.order-tagger 1.0.0 (submitted)" in second
    for token in tokens:
        me = ApiClient(token).call("GET", "me").json()
        assert me["kind"] == "service_account"
        assert ApiClient(token).call("GET", f"orgs/{me['org_id']}/members").status_code == 200
        assert ApiToken.objects.filter(org_id=me["org_id"], last_four=token[-4:]).exists()
    # the customer org's SCIM token answers on /scim/v2/ and holds nothing but scim:write
    [scim] = re.findall(r"SCIM token\s+(plz_\S+)", second)
    assert scim in first
    users = ApiClient(scim).get("/scim/v2/Users", HTTP_AUTHORIZATION=f"Bearer {scim}")
    assert users.status_code == 200 and users.json()["totalResults"] == 5
    assert ApiToken.objects.get(last_four=scim[-4:]).scopes == ["scim:write"]
    assert "plaza-demo-password" in second and "http://" in second
    assert audit_verify().ok


def test_demo_users_can_sign_in(db, client):
    _seed()
    res = client.post("/accounts/login/", {"login": "admin@globex.example", "password": "plaza-demo-password"})
    assert res.status_code == 302 and client.get("/api/v1/me").json()["email"] == "admin@globex.example"

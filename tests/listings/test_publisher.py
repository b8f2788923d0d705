"""The publisher's side: the listing API (draft, images, submission, profile), the editor page
and its preview, and who may use them."""

from __future__ import annotations

import pytest

from apps.listings.models import DraftStatus, Listing, ListingDraft, ListingMedia
from apps.orgs.models import Role
from tests.conftest import ApiClient, MultipartForm
from tests.listings.support import CONTENT, image_bytes, publish

pytestmark = pytest.mark.django_db


def session(user) -> ApiClient:
    client = ApiClient()
    client.force_login(user)
    return client


@pytest.fixture
def extension(vendor):
    vendor.release()
    return vendor.extension()


def base(vendor, extension) -> str:
    return f"orgs/{vendor.org.pk}/extensions/{extension.pk}/listing"


def test_the_listing_api_round_trip(vendor, extension, staff, client):
    vera = session(vendor.tenant.owner)
    # before anything is saved: defaults from the extension, nothing written
    res = vera.call("GET", base(vendor, extension))
    assert res.status_code == 200 and res.json()["listing_id"] is None
    assert res.json()["draft"]["name"] == extension.name and not Listing.objects.exists()
    # save the draft
    res = vera.call("PUT", base(vendor, extension), CONTENT)
    assert res.status_code == 200, res.content
    body = res.json()
    assert body["draft"]["status"] == "editing" and body["draft"]["problems"] == []
    assert body["published"] is False and body["visible"] is False
    # add an icon and a screenshot
    res = vera.call("POST", f"{base(vendor, extension)}/icon", MultipartForm({}, {"file": image_bytes(512, 512)}))
    assert res.status_code == 201, res.content
    assert res.json()["width"] == 256 and res.json()["url"].endswith(".webp")
    shot = vera.call(
        "POST",
        f"{base(vendor, extension)}/screenshots",
        MultipartForm({"caption": "Settings"}, {"file": image_bytes(800, 600, fmt="JPEG")}),
    )
    assert shot.status_code == 201 and shot.json()["caption"] == "Settings"
    # submit; staff approve; it is live
    res = vera.call("POST", f"{base(vendor, extension)}/submit")
    assert res.status_code == 200 and res.json()["draft"]["status"] == "submitted"
    moderator = session(staff.owner)
    queue = moderator.call("GET", "staff/listings").json()["data"]
    assert [q["extension_key"] for q in queue] == [extension.key]
    res = moderator.call("POST", f"staff/listings/{queue[0]['listing_id']}/decision", {"decision": "approve"})
    assert res.status_code == 200, res.content
    live = client.get(f"/api/v1/marketplace/listings/{extension.key}").json()
    assert live["icon"]["width"] == 256 and [s["caption"] for s in live["screenshots"]] == ["Settings"]
    # the image is served, immutable, as WebP
    image = client.get(live["icon"]["url"])
    assert image.status_code == 200 and image["Content-Type"] == "image/webp"
    assert "immutable" in image["Cache-Control"] and image["X-Content-Type-Options"] == "nosniff"
    assert b"".join(image.streaming_content)[:4] == b"RIFF"
    # removing a screenshot changes the draft only
    res = vera.call("DELETE", f"{base(vendor, extension)}/screenshots/{shot.json()['id']}")
    assert res.status_code == 204
    assert ListingDraft.objects.get().screenshots == [] and Listing.objects.get().screenshots != []
    assert ListingDraft.objects.get().status == DraftStatus.EDITING
    assert vera.call("DELETE", f"{base(vendor, extension)}/screenshots/{shot.json()['id']}").status_code == 404


def test_the_media_view_serves_only_known_digests(client):
    assert client.get(f"/marketplace/media/{'0' * 64}.webp").status_code == 404
    assert client.get("/marketplace/media/..%2F..%2Fetc%2Fpasswd.webp").status_code == 404
    assert client.get("/marketplace/media/ABC.webp").status_code == 404


def test_submitting_an_incomplete_listing_lists_every_problem(vendor, extension):
    vera = session(vendor.tenant.owner)
    vera.call("PUT", base(vendor, extension), {"name": "Tagger"})
    res = vera.call("POST", f"{base(vendor, extension)}/submit")
    assert res.status_code == 400
    error = res.json()["error"]
    assert error["code"] == "listing_incomplete"
    assert {d["param"] for d in error["details"]} == {"tagline", "description", "categories", "privacy_url"}


def test_a_rejected_listing_shows_the_reason(vendor, extension, staff):
    vera = session(vendor.tenant.owner)
    vera.call("PUT", base(vendor, extension), CONTENT)
    vera.call("POST", f"{base(vendor, extension)}/submit")
    listing = Listing.objects.get()
    moderator = session(staff.owner)
    res = moderator.call("POST", f"staff/listings/{listing.pk}/decision", {"decision": "reject"})
    assert res.status_code == 400 and res.json()["error"]["param"] == "reason"
    moderator.call("POST", f"staff/listings/{listing.pk}/decision", {"decision": "reject", "reason": "Add docs."})
    draft = vera.call("GET", base(vendor, extension)).json()["draft"]
    assert draft["status"] == "rejected" and draft["decision_reason"] == "Add docs."
    # deciding twice is a conflict
    res = moderator.call("POST", f"staff/listings/{listing.pk}/decision", {"decision": "approve"})
    assert res.status_code == 409 and res.json()["error"]["code"] == "draft_not_submitted"


def test_screenshots_are_limited(vendor, extension):
    vera = session(vendor.tenant.owner)
    for _ in range(8):
        shot = MultipartForm({}, {"file": image_bytes(400, 300)})
        assert vera.call("POST", f"{base(vendor, extension)}/screenshots", shot).status_code == 201
    res = vera.call("POST", f"{base(vendor, extension)}/screenshots", MultipartForm({}, {"file": image_bytes()}))
    assert res.status_code == 409 and res.json()["error"]["code"] == "too_many_screenshots"


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image_format"),
        (b"GIF89a" + b"\x00" * 20, "image_format"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 30, "image_format"),
        (b"", "image_invalid"),
    ],
)
def test_bad_uploads_are_refused_and_store_nothing(vendor, extension, data, code):
    vera = session(vendor.tenant.owner)
    res = vera.call("POST", f"{base(vendor, extension)}/icon", MultipartForm({}, {"file": data}))
    assert res.status_code == 400, res.content
    error = res.json()["error"]
    assert error["code"] == code and error["param"] == "file"
    assert not ListingMedia.objects.exists()


def test_an_upload_without_a_file_is_a_validation_error(vendor, extension):
    res = session(vendor.tenant.owner).call("POST", f"{base(vendor, extension)}/icon", MultipartForm({}, {}))
    assert res.status_code == 400


def test_the_publisher_profile(vendor, client):
    publish(vendor)
    vera = session(vendor.tenant.owner)
    res = vera.call("PUT", f"orgs/{vendor.org.pk}/publisher-profile", {"about": "We tag.", "website": "http://x.io"})
    assert res.status_code == 400 and res.json()["error"]["param"] == "website"
    res = vera.call("PUT", f"orgs/{vendor.org.pk}/publisher-profile", {"about": "We tag.", "website": "https://x.io"})
    assert res.status_code == 200 and res.json()["verified"] is False
    page = client.get(f"/marketplace/publishers/{vendor.org.slug}/").content.decode()
    assert "We tag." in page and "https://x.io" in page and "Order Tagger" in page


@pytest.mark.parametrize("role", [Role.MEMBER, Role.BILLING])
def test_members_without_a_builder_role_cannot_see_or_edit_the_listing(vendor, extension, role):
    client = session(vendor.tenant.user(role))
    assert client.call("GET", base(vendor, extension)).status_code == 403
    assert client.call("PUT", base(vendor, extension), CONTENT).status_code == 403
    page = f"/orgs/{vendor.org.pk}/extensions/{extension.pk}/listing/"
    assert session(vendor.tenant.user(role)).get(page).status_code == 403
    assert not Listing.objects.exists()


def test_another_tenant_cannot_reach_the_listing(vendor, extension, acme):
    client = session(acme.owner)
    assert client.call("GET", base(vendor, extension)).status_code == 404
    assert client.call("PUT", f"orgs/{acme.org.pk}/extensions/{extension.pk}/listing", CONTENT).status_code == 404
    assert session(acme.owner).get(f"/orgs/{vendor.org.pk}/extensions/{extension.pk}/listing/").status_code == 404
    assert session(acme.owner).get(f"/orgs/{acme.org.pk}/extensions/{extension.pk}/listing/preview/").status_code == 404


# --- the editor page ---------------------------------------------------------------------------------
def page_url(vendor, extension, suffix="") -> str:
    return f"/orgs/{vendor.org.pk}/extensions/{extension.pk}/listing/{suffix}"


def form(**overrides) -> dict:
    data = {**CONTENT, "tags": ", ".join(CONTENT["tags"]), **overrides}
    return data


def test_the_editor_saves_uploads_and_submits(vendor, extension, login_client):
    web = login_client(vendor.tenant.owner)
    html = web.get(page_url(vendor, extension)).content.decode()
    assert "Not published yet" in html and 'value="Order Tagger"' in html
    res = web.post(page_url(vendor, extension), {**form(), "op": "save"})
    assert res.status_code == 302
    from django.core.files.uploadedfile import SimpleUploadedFile

    res = web.post(
        page_url(vendor, extension),
        {"op": "screenshot", "caption": "Main", "file": SimpleUploadedFile("a.png", image_bytes(), "image/png")},
    )
    assert res.status_code == 302
    res = web.post(page_url(vendor, extension), {**form(), "op": "submit"})
    assert res.status_code == 302
    draft = ListingDraft.objects.get()
    assert draft.status == DraftStatus.SUBMITTED and draft.screenshots[0]["caption"] == "Main"
    assert "Waiting for staff review" in web.get(page_url(vendor, extension)).content.decode()


def test_the_editor_shows_errors_next_to_the_field_and_keeps_the_input(vendor, extension, login_client):
    web = login_client(vendor.tenant.owner)
    res = web.post(page_url(vendor, extension), {**form(docs_url="http://insecure.example", name="Kept"), "op": "save"})
    assert res.status_code == 400
    html = res.content.decode()
    assert 'id="docs_url-error"' in html and "https://" in html and 'value="Kept"' in html
    assert not Listing.objects.exists()


def test_the_editor_refuses_svg_uploads(vendor, extension, login_client):
    from django.core.files.uploadedfile import SimpleUploadedFile

    web = login_client(vendor.tenant.owner)
    svg_bytes = b"<svg xmlns='http://www.w3.org/2000/svg'><script>1</script></svg>"
    svg = SimpleUploadedFile("x.svg", svg_bytes, "image/svg+xml")
    res = web.post(page_url(vendor, extension), {"op": "icon", "file": svg})
    assert res.status_code == 400 and b"PNG, JPEG or WebP" in res.content
    assert not ListingMedia.objects.exists()


def test_a_developer_can_edit_but_a_member_only_reads_nothing(vendor, extension, login_client):
    dev = login_client(vendor.tenant.user(Role.DEVELOPER))
    assert dev.post(page_url(vendor, extension), {**form(), "op": "save"}).status_code == 302
    member = login_client(vendor.tenant.user(Role.MEMBER))
    assert member.post(page_url(vendor, extension), {**form(name="Hijack"), "op": "save"}).status_code == 403
    assert ListingDraft.objects.get().name == CONTENT["name"]


def test_the_preview_renders_the_draft_like_the_public_page(vendor, extension, login_client, client):
    web = login_client(vendor.tenant.owner)
    web.post(page_url(vendor, extension), {**form(description="# Big news\n\n<script>x()</script>"), "op": "save"})
    res = web.get(page_url(vendor, extension, "preview/"))
    html = res.content.decode()
    assert res.status_code == 200 and "Preview of your draft" in html
    assert "<h2>Big news</h2>" in html and "<script>x()" not in html and "&lt;script&gt;" in html
    assert "Receive &#x27;order.created&#x27; events" in html  # scopes in plain words
    # it is not public
    assert client.get(f"/marketplace/{extension.key}/").status_code == 404


def test_the_extension_page_links_to_the_listing_editor(vendor, extension, login_client):
    html = login_client(vendor.tenant.owner).get(f"/orgs/{vendor.org.pk}/extensions/{extension.pk}/").content.decode()
    assert page_url(vendor, extension) in html

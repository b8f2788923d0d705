"""The install console's pages through the browser's eyes (the Django test client): choosing where to
install, the consent screen (every scope in plain words, the settings form, refusals as page
states), the installations list, one installation (secrets masked, settings, update with
re-consent, rollback, uninstall) and the cleanup report. alice owns acme, bob is a member of it,
charlie belongs to globex."""

from __future__ import annotations

import html

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.extensions import scopes as scope_vocab
from apps.installs import selectors, services
from apps.installs.config import secrets_decrypt
from apps.installs.models import CleanupReport, Installation, InstallationStatus, InstallPolicy, InstallRule
from apps.orgs.models import Organization
from tests.installs.conftest import CONFIG_SCHEMA
from tests.installs.support import person, session

NEW_SCOPES = ["events:read:order.created", "http:fetch:api.example.com", "kv:write"]


# --- helpers ----------------------------------------------------------------------------------------
def consent_url(org, extension) -> str:
    return reverse("install_consent", kwargs={"org_id": org.pk, "extension_id": extension.pk})


def detail_url(installation) -> str:
    return reverse("installation_detail", kwargs={"org_id": installation.org_id, "installation_id": installation.pk})


def cleanup_url(installation) -> str:
    return reverse("installation_cleanup", kwargs={"org_id": installation.org_id, "installation_id": installation.pk})


def list_url(org) -> str:
    return reverse("installations", kwargs={"org_id": org.pk})


def text(res) -> str:
    return res.content.decode()


def shows(res, words: str) -> bool:
    """Whether the page shows ``words`` (as the template escapes them)."""
    return html.escape(words) in text(res)


def consent_form(version, *, consent: bool = True, **config) -> dict:
    """What the consent form posts: its hidden fields, the consent box, settings as config.<name>."""
    data = {
        "channel": version.channel,
        "version": version.pk,
        "update_policy": "auto",
        "granted_scopes": list(version.scopes),
        **{f"config.{k}": v for k, v in config.items()},
    }
    if consent:
        data["consent"] = "yes"
    return data


def install(org, user, version, **kwargs) -> Installation:
    return services.installation_create(
        principal=person(user),
        org=org,
        extension=version.extension,
        granted_scopes=list(version.scopes),
        version=version,
        **kwargs,
    )


@pytest.fixture
def v1(vendor):
    return vendor.release(config_schema=CONFIG_SCHEMA)


@pytest.fixture
def alice_web(acme):
    return session(acme.owner)


@pytest.fixture
def bob_web(bob):
    return session(bob)


@pytest.fixture
def charlie_web(charlie):
    return session(charlie)


# --- choosing where to install ----------------------------------------------------------------------
def test_install_start_offers_the_orgs_where_the_person_may_install(acme, v1, alice_web):
    res = alice_web.get(reverse("install_start", args=[v1.extension_id]))
    assert res.status_code == 200
    assert f'href="{consent_url(acme.org, v1.extension)}"' in text(res)
    # choosing one goes on to its consent screen, keeping the channel
    res = alice_web.get(reverse("install_start", args=[v1.extension_id]), {"org": acme.org.pk, "channel": "beta"})
    assert res.status_code == 302 and res["Location"] == consent_url(acme.org, v1.extension) + "?channel=beta"


def test_install_start_offers_members_without_permission_a_request_instead(acme, v1, bob_web):
    res = bob_web.get(reverse("install_start", args=[v1.extension_id]))
    assert res.status_code == 200
    assert f'href="{consent_url(acme.org, v1.extension)}"' not in text(res)
    assert "does not allow installing" in text(res)
    try:
        request_url = reverse("install_request_new", kwargs={"org_id": acme.org.pk})
    except Exception:  # the requests page (H2) may not exist yet: the page must not need it
        request_url = None
    if request_url:
        assert f"{request_url}?extension={v1.extension_id}" in text(res)
    res = bob_web.get(reverse("install_start", args=[v1.extension_id]), {"org": acme.org.pk})
    assert res.status_code == 400


def test_install_start_links_an_existing_installation(acme, v1, alice_web):
    installation = install(acme.org, acme.owner, v1)
    res = alice_web.get(reverse("install_start", args=[v1.extension_id]))
    assert detail_url(installation) in text(res)
    res = alice_web.get(reverse("install_start", args=[v1.extension_id]), {"org": acme.org.pk})
    assert res.status_code == 302 and res["Location"] == detail_url(installation)


def test_install_start_runs_as_many_queries_for_many_organisations_as_for_few(acme, v1, alice_web):
    from apps.orgs.models import Membership
    from tests.conftest import make_tenant

    url = reverse("install_start", args=[v1.extension_id])
    alice_web.get(url)  # warm-up
    with CaptureQueriesContext(connection) as few:
        assert alice_web.get(url).status_code == 200
    for n in range(4):
        tenant = make_tenant(f"more{n}", f"owner{n}@more.test")
        Membership.objects.create(org=tenant.org, user=acme.owner, role="owner")
        if n % 2:
            install(tenant.org, tenant.owner, v1)
    with CaptureQueriesContext(connection) as many:
        res = alice_web.get(url)
    assert "More3" in text(res)
    assert len(many) <= len(few), "\n".join(q["sql"] for q in many.captured_queries)


def test_install_start_needs_a_sign_in(v1, client):
    res = client.get(reverse("install_start", args=[v1.extension_id]))
    assert res.status_code == 302 and "/accounts/login/" in res["Location"]


@pytest.mark.parametrize("extension_id", ["ext_nope", "nonsense", "ext_01HZZZZZZZZZZZZZZZZZZZZZZZ\x00"])
def test_install_start_of_an_unknown_extension_is_not_found(acme, alice_web, extension_id):
    res = alice_web.get(f"/install/{extension_id}/")
    assert res.status_code == 404


def test_an_extension_no_channel_serves_is_not_found_for_customers(acme, vendor, alice_web):
    draft = vendor.release("secret-project", certified=False)
    assert alice_web.get(reverse("install_start", args=[draft.extension_id])).status_code == 404
    assert alice_web.get(consent_url(acme.org, draft.extension)).status_code == 404


# --- the consent screen -----------------------------------------------------------------------------
def test_consent_screen_shows_every_scope_in_plain_words_and_what_it_reaches(acme, vendor, alice_web):
    scopes = ["events:read:order.created", "kv:write", "http:fetch:api.example.com", "api:members:read"]
    version = vendor.release(scopes=scopes, config_schema=CONFIG_SCHEMA)
    res = alice_web.get(consent_url(acme.org, version.extension))
    assert res.status_code == 200
    for name in scopes:
        scope = scope_vocab.parse(name)
        assert shows(res, scope.describe()), name
        assert shows(res, scope.reaches()), name
        assert f'name="granted_scopes" value="{name}"' in text(res)
    assert shows(res, vendor.org.name) and "1.0.0" in text(res)
    assert f"I allow {version.extension.name} these scopes" in text(res)
    # the settings form, with the schema's defaults filled in, and the update policy
    assert 'name="config.tag_prefix"' in text(res) and 'value="auto-"' in text(res)
    assert 'name="config.threshold"' in text(res) and 'value="10"' in text(res)
    assert 'name="config.api_key"' in text(res) and 'type="password"' in text(res)
    assert 'name="update_policy" value="auto"' in text(res) and 'name="update_policy" value="pinned"' in text(res)


def test_install_through_the_consent_screen(acme, v1, alice_web):
    data = consent_form(v1, tag_prefix="acme-", threshold="5", api_key="s3cret")
    data["update_policy"] = "pinned"
    res = alice_web.post(consent_url(acme.org, v1.extension), data)
    assert res.status_code == 302, text(res)
    installation = Installation.objects.get(org=acme.org, extension=v1.extension)
    assert res["Location"] == detail_url(installation)
    assert installation.config == {"tag_prefix": "acme-", "threshold": 5}
    assert secrets_decrypt(installation.config_secrets_encrypted) == {"api_key": "s3cret"}
    assert installation.update_policy == "pinned" and sorted(installation.granted_scopes) == sorted(v1.scopes)
    page = alice_web.get(res["Location"])
    assert "is installed in" in text(page)  # the success message


def test_install_without_ticking_consent_installs_nothing_and_keeps_the_form(acme, v1, alice_web):
    res = alice_web.post(consent_url(acme.org, v1.extension), consent_form(v1, consent=False, tag_prefix="kept-"))
    assert res.status_code == 400
    assert not Installation.objects.filter(org=acme.org).exists()
    assert "Tick the box" in text(res) and 'value="kept-"' in text(res)


def test_consent_to_other_scopes_than_shown_is_refused(acme, v1, alice_web):
    data = consent_form(v1)
    data["granted_scopes"] = ["kv:read"]
    res = alice_web.post(consent_url(acme.org, v1.extension), data)
    assert res.status_code == 400
    assert not Installation.objects.filter(org=acme.org).exists()
    assert 'id="consent-error"' in text(res)


def test_config_errors_from_the_server_are_shown_next_to_the_field_and_nothing_is_lost(acme, v1, alice_web):
    data = consent_form(v1, tag_prefix="x" * 21, threshold="5000", api_key="s3cret-value")
    res = alice_web.post(consent_url(acme.org, v1.extension), data)
    assert res.status_code == 400
    assert not Installation.objects.filter(org=acme.org).exists()
    page = text(res)
    assert 'id="cfg-threshold-error"' in page and 'id="cfg-threshold"' in page
    assert 'value="5000"' in page and 'value="' + "x" * 21 + '"' in page  # what was typed stays
    assert "s3cret-value" not in page  # but a secret is never sent back
    assert 'role="alert"' in page and 'href="#cfg-threshold"' in page  # the summary links to the field


def test_values_that_are_not_numbers_are_refused_before_the_service(acme, v1, alice_web):
    res = alice_web.post(consent_url(acme.org, v1.extension), consent_form(v1, threshold="ten"))
    assert res.status_code == 400
    assert "Enter a whole number." in text(res)
    assert not Installation.objects.filter(org=acme.org).exists()


def test_a_required_setting_left_empty_is_reported(acme, v1, alice_web):
    res = alice_web.post(consent_url(acme.org, v1.extension), consent_form(v1, tag_prefix=""))
    # the default fills it: the schema's default applies when the field is left empty
    assert res.status_code == 302
    assert Installation.objects.get(org=acme.org).config["tag_prefix"] == "auto-"


def test_html_in_the_config_schema_is_escaped_on_the_consent_screen(acme, vendor, alice_web):
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string", "title": "<script>alert(1)</script>", "description": "<b>x</b>"}},
    }
    version = vendor.release(config_schema=schema)
    res = alice_web.get(consent_url(acme.org, version.extension))
    assert res.status_code == 200
    assert "<script>alert(1)</script>" not in text(res) and "<b>x</b>" not in text(res)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text(res)


def test_the_channel_choice_shows_that_channels_version(acme, vendor, alice_web):
    vendor.release(config_schema=CONFIG_SCHEMA)
    beta = vendor.release(version="1.1.0-beta.1", channel="beta", scopes=NEW_SCOPES)
    res = alice_web.get(consent_url(acme.org, beta.extension), {"channel": "beta"})
    assert res.status_code == 200
    assert "1.1.0-beta.1" in text(res) and 'name="granted_scopes" value="kv:write"' in text(res)
    # htmx swaps only the consent part
    res = alice_web.get(consent_url(acme.org, beta.extension), {"channel": "beta"}, HTTP_HX_REQUEST="true")
    assert res.status_code == 200 and "<html" not in text(res) and 'id="consent"' in text(res)
    # installing from beta follows beta
    res = alice_web.post(consent_url(acme.org, beta.extension), consent_form(beta))
    assert res.status_code == 302, text(res)
    installation = Installation.objects.get(org=acme.org)
    assert (installation.channel, installation.version_id) == ("beta", beta.pk)


def test_a_version_released_while_the_admin_reads_is_shown_before_installing(acme, vendor, v1, alice_web):
    newer = vendor.release(version="1.0.1", config_schema=CONFIG_SCHEMA, scopes=NEW_SCOPES)
    res = alice_web.post(consent_url(acme.org, v1.extension), consent_form(v1))
    assert res.status_code == 409
    assert not Installation.objects.filter(org=acme.org).exists()
    assert "1.0.1" in text(res) and f'name="version" value="{newer.pk}"' in text(res)


@pytest.mark.parametrize(
    ("rule", "code"),
    [
        (lambda v: {"kind": "extension", "effect": "deny", "value": v.extension_id}, "extension_denied"),
        (lambda v: {"kind": "publisher", "effect": "deny", "value": v.extension.org_id}, "publisher_denied"),
        (lambda v: {"kind": "scope", "effect": "deny", "value": "kv:*"}, "scope_denied"),
        (None, "not_allowlisted"),
    ],
)
def test_organisation_rules_refuse_on_the_page(acme, v1, alice_web, rule, code):
    if rule is None:
        InstallPolicy.objects.create(org=acme.org, mode="allowlist")
    else:
        InstallRule.objects.create(org=acme.org, **rule(v1))
    res = alice_web.get(consent_url(acme.org, v1.extension))
    assert res.status_code == 403
    assert f'data-code="{code}"' in text(res)
    assert "refuse this install" in text(res)
    assert 'name="consent"' not in text(res)  # no form to fill in for nothing
    # a POST made anyway (an older tab) is refused the same way
    res = alice_web.post(consent_url(acme.org, v1.extension), consent_form(v1))
    assert res.status_code == 403 and f'data-code="{code}"' in text(res)
    assert not Installation.objects.filter(org=acme.org).exists()


def test_an_uncertified_version_cannot_be_installed_outside_the_sandbox(vendor):
    draft = vendor.release("sandboxed", certified=False)
    vera = session(vendor.tenant.owner)
    res = vera.get(consent_url(vendor.org, draft.extension))
    assert res.status_code == 409
    assert 'data-code="version_not_installable"' in text(res)
    assert "only certified versions" in text(res)


def test_the_publishers_sandbox_installs_an_uncertified_version(vendor):
    draft = vendor.release("sandboxed", certified=False)
    sandbox = Organization.objects.filter(sandbox_of=vendor.org).first()
    if sandbox is None:
        pytest.skip("sandbox tenants (H2) are not made yet")
    vera = session(vendor.tenant.owner)
    res = vera.get(reverse("install_start", args=[draft.extension_id]))
    assert consent_url(sandbox, draft.extension) in text(res)
    res = vera.get(consent_url(sandbox, draft.extension))
    assert res.status_code == 200 and "not certified" in text(res)
    res = vera.post(consent_url(sandbox, draft.extension), consent_form(draft))
    assert res.status_code == 302, text(res)
    assert Installation.objects.filter(org=sandbox, version=draft).exists()


def test_an_installed_extension_is_not_installed_twice(acme, v1, alice_web):
    installation = install(acme.org, acme.owner, v1)
    res = alice_web.get(consent_url(acme.org, v1.extension))
    assert res.status_code == 409 and detail_url(installation) in text(res)
    res = alice_web.post(consent_url(acme.org, v1.extension), consent_form(v1))
    assert res.status_code == 409
    assert Installation.objects.filter(org=acme.org).count() == 1


def test_members_without_install_permission_are_refused_and_offered_a_request(acme, v1, bob_web):
    res = bob_web.get(consent_url(acme.org, v1.extension))
    assert res.status_code == 403
    assert 'data-code="role"' in text(res) and 'name="consent"' not in text(res)
    res = bob_web.post(consent_url(acme.org, v1.extension), consent_form(v1))
    assert res.status_code == 403
    assert not Installation.objects.filter(org=acme.org).exists()


def test_another_organisations_consent_screen_is_not_found(acme, v1, charlie_web):
    assert charlie_web.get(consent_url(acme.org, v1.extension)).status_code == 404
    assert charlie_web.post(consent_url(acme.org, v1.extension), consent_form(v1)).status_code == 404
    assert not Installation.objects.exists()


# --- the list ---------------------------------------------------------------------------------------
def test_the_list_points_to_the_storefront_when_empty(acme, alice_web):
    res = alice_web.get(list_url(acme.org))
    assert res.status_code == 200
    assert "No extensions installed yet" in text(res) and 'href="/marketplace/"' in text(res)


def test_the_list_shows_installations_and_filters_by_status(acme, vendor, v1, alice_web, bob_web):
    installation = install(acme.org, acme.owner, v1)
    other = install(acme.org, acme.owner, vendor.release("blocked-one"))
    Installation.objects.filter(pk=other.pk).update(status=InstallationStatus.BLOCKED, status_reason="denied by rule")
    res = alice_web.get(list_url(acme.org))
    assert detail_url(installation) in text(res) and detail_url(other) in text(res)
    res = alice_web.get(list_url(acme.org), {"status": "blocked"})
    assert detail_url(installation) not in text(res) and "denied by rule" in text(res)
    res = alice_web.get(list_url(acme.org), {"status": "blocked"}, HTTP_HX_REQUEST="true")
    assert "<html" not in text(res) and 'id="installation-rows"' in text(res)
    assert alice_web.get(list_url(acme.org), {"status": "nonsense\x00"}).status_code == 400
    # members may look
    assert bob_web.get(list_url(acme.org)).status_code == 200


def test_the_list_of_another_organisation_is_not_found(acme, charlie_web):
    assert charlie_web.get(list_url(acme.org)).status_code == 404


def test_the_list_runs_as_many_queries_for_many_installations_as_for_few(acme, vendor, alice_web):
    made = []

    def grow(n: int) -> None:
        for _ in range(n):
            i = len(made)
            vendor.extension(f"ext-{i}", display_name=f"item-{i}")
            made.append(install(acme.org, acme.owner, vendor.release(f"ext-{i}")))

    grow(2)
    alice_web.get(list_url(acme.org))  # warm-up
    with CaptureQueriesContext(connection) as few:
        assert alice_web.get(list_url(acme.org)).status_code == 200
    grow(8)
    with CaptureQueriesContext(connection) as many:
        res = alice_web.get(list_url(acme.org))
    assert "item-9" in text(res)
    assert len(few) == len(many), "\n".join(q["sql"] for q in many.captured_queries)


def test_the_console_links_the_installations(acme, alice_web):
    res = alice_web.get(reverse("org_console", kwargs={"org_id": acme.org.pk}))
    assert f'href="{list_url(acme.org)}"' in text(res)


# --- one installation -------------------------------------------------------------------------------
@pytest.fixture
def installation(acme, v1):
    return install(acme.org, acme.owner, v1, config={"tag_prefix": "acme-", "api_key": "s3cret"})


def test_the_detail_page_masks_secrets_and_shows_the_grant(installation, alice_web):
    res = alice_web.get(detail_url(installation))
    assert res.status_code == 200
    page = text(res)
    assert "s3cret" not in page
    assert 'id="cfg-api_key-state">set<' in page
    assert 'value="acme-"' in page
    for line in selectors.scope_lines(installation.granted_scopes):
        assert shows(res, line["describe"])


def test_saving_settings_keeps_a_secret_left_empty(installation, alice_web):
    res = alice_web.post(
        detail_url(installation),
        {"op": "configure", "config.tag_prefix": "new-", "config.threshold": "3", "config.api_key": ""},
    )
    assert res.status_code == 302, text(res)
    installation.refresh_from_db()
    assert installation.config == {"tag_prefix": "new-", "threshold": 3}
    assert secrets_decrypt(installation.config_secrets_encrypted) == {"api_key": "s3cret"}
    # a value typed in replaces it
    alice_web.post(detail_url(installation), {"op": "configure", "config.tag_prefix": "new-", "config.api_key": "n3w"})
    installation.refresh_from_db()
    assert secrets_decrypt(installation.config_secrets_encrypted) == {"api_key": "n3w"}


def test_invalid_settings_are_shown_next_to_the_field(installation, alice_web):
    res = alice_web.post(
        detail_url(installation), {"op": "configure", "config.tag_prefix": "ok", "config.threshold": "-1"}
    )
    assert res.status_code == 400
    assert 'id="cfg-threshold-error"' in text(res) and 'value="-1"' in text(res)
    installation.refresh_from_db()
    assert installation.config["threshold"] == 10


def test_an_error_about_the_whole_config_never_shows_the_stored_secret(acme, vendor, alice_web):
    # given settings whose schema forbids a combination on the whole object, and a stored secret
    schema = {**CONFIG_SCHEMA, "not": {"properties": {"tag_prefix": {"const": "no"}}, "required": ["tag_prefix"]}}
    installation = install(acme.org, acme.owner, vendor.release("rooted", config_schema=schema),
                           config={"tag_prefix": "ok", "api_key": "SUPERSECRET-123"})  # fmt: skip
    # when the admin saves settings that break it
    res = alice_web.post(detail_url(installation), {"op": "configure", "config.tag_prefix": "no"})
    # then the page names the rule, and the secret appears nowhere
    assert res.status_code == 400
    assert "SUPERSECRET-123" not in text(res)
    assert shows(res, "does not satisfy the schema's 'not' rule")


def test_an_escaped_nul_in_a_json_setting_is_refused_on_the_page(acme, vendor, alice_web):
    schema = {"type": "object", "properties": {"extra": {"type": "object"}}}
    installation = install(acme.org, acme.owner, vendor.release("jsonish", config_schema=schema))
    res = alice_web.post(detail_url(installation), {"op": "configure", "config.extra": '{"a": "x\\u0000y"}'})
    assert res.status_code == 400 and "control character" in text(res)
    installation.refresh_from_db()
    assert installation.config == {}


def test_update_settings_change_channel_and_policy(installation, alice_web):
    res = alice_web.post(detail_url(installation), {"op": "settings", "channel": "beta", "update_policy": "pinned"})
    assert res.status_code == 302, text(res)
    installation.refresh_from_db()
    assert (installation.channel, installation.update_policy) == ("beta", "pinned")
    res = alice_web.post(detail_url(installation), {"op": "settings", "channel": "nightly", "update_policy": "auto"})
    assert res.status_code == 400


def test_an_update_that_asks_for_more_shows_the_diff_and_needs_consent(vendor, installation, alice_web):
    newer = vendor.release(version="1.1.0", scopes=NEW_SCOPES, config_schema=CONFIG_SCHEMA)
    res = alice_web.get(detail_url(installation))
    page = text(res)
    assert "Update available: 1.0.0 → 1.1.0" in page
    assert shows(res, "Connect to api.example.com over HTTPS") and "New" in page  # added
    assert shows(res, "Store, change and delete its own data") and "More power" in page  # escalated
    assert shows(res, "Read its own stored data")  # what it replaces
    assert 'name="consent"' in page
    for scope in NEW_SCOPES:
        assert f'name="granted_scopes" value="{scope}"' in page
    # without ticking consent nothing changes
    form = {"op": "update", "version": newer.pk, "granted_scopes": NEW_SCOPES}
    res = alice_web.post(detail_url(installation), form)
    assert res.status_code == 400 and "Tick the box" in text(res)
    installation.refresh_from_db()
    assert installation.version_id != newer.pk
    # with it, the update applies and the grant is the new version's scopes
    res = alice_web.post(detail_url(installation), {**form, "consent": "yes"})
    assert res.status_code == 302, text(res)
    installation.refresh_from_db()
    assert installation.version_id == newer.pk and sorted(installation.granted_scopes) == sorted(NEW_SCOPES)


def test_an_update_that_asks_for_nothing_new_is_one_button(vendor, installation, alice_web):
    services.installation_settings_update(principal=person(installation.installed_by), installation=installation,
                                          update_policy="pinned")  # fmt: skip
    patch = vendor.release(version="1.0.1", config_schema=CONFIG_SCHEMA)
    res = alice_web.get(detail_url(installation))
    assert "Update now" in text(res) and 'name="consent"' not in text(res)
    res = alice_web.post(detail_url(installation), {"op": "update", "version": patch.pk})
    assert res.status_code == 302, text(res)
    installation.refresh_from_db()
    assert installation.version_id == patch.pk


def test_a_stale_update_form_is_refused(vendor, installation, alice_web):
    first = vendor.release(version="1.0.1", config_schema=CONFIG_SCHEMA)
    vendor.release(version="1.0.2", config_schema=CONFIG_SCHEMA)
    res = alice_web.post(detail_url(installation), {"op": "update", "version": first.pk})
    assert res.status_code == 409 and "1.0.2 is on offer now" in text(res)


def test_rollback_asks_for_confirmation_then_returns_and_pins(vendor, v1, installation, alice_web):
    newer = vendor.release(version="1.1.0", scopes=NEW_SCOPES, config_schema=CONFIG_SCHEMA)
    services.installation_update(principal=person(installation.installed_by), installation=installation,
                                 version=newer, granted_scopes=NEW_SCOPES)  # fmt: skip
    res = alice_web.get(detail_url(installation))
    assert f'name="version" value="{v1.pk}"' in text(res) and "hx-confirm" in text(res)
    # without JavaScript: a confirmation step first
    res = alice_web.post(detail_url(installation), {"op": "rollback", "version": v1.pk})
    assert res.status_code == 200 and "Roll Order Tagger back to 1.0.0?" in text(res)
    installation.refresh_from_db()
    assert installation.version_id == newer.pk
    res = alice_web.post(detail_url(installation), {"op": "rollback", "version": v1.pk, "confirmed": "yes"})
    assert res.status_code == 302, text(res)
    installation.refresh_from_db()
    assert (installation.version_id, installation.update_policy) == (v1.pk, "pinned")
    history = text(alice_web.get(detail_url(installation)))
    assert "Rolled back" in history and "1.1.0 → 1.0.0" in history


def test_rollback_over_htmx_navigates_when_done(vendor, v1, installation, alice_web):
    newer = vendor.release(version="1.0.1", config_schema=CONFIG_SCHEMA)
    services.installation_update(principal=person(installation.installed_by), installation=installation, version=newer)
    res = alice_web.post(
        detail_url(installation), {"op": "rollback", "version": v1.pk, "confirmed": "yes"}, HTTP_HX_REQUEST="true"
    )
    assert res.status_code == 200 and res["HX-Redirect"] == detail_url(installation)
    installation.refresh_from_db()
    assert installation.version_id == v1.pk


def test_rollback_to_a_version_never_run_is_refused(vendor, installation, alice_web):
    other = vendor.release(version="1.2.0", config_schema=CONFIG_SCHEMA, promote=False)
    res = alice_web.post(detail_url(installation), {"op": "rollback", "version": other.pk, "confirmed": "yes"})
    assert res.status_code == 409
    installation.refresh_from_db()
    assert installation.version.version == "1.0.0"


def test_uninstall_confirms_what_goes_then_shows_the_cleanup_report(installation, alice_web):
    res = alice_web.get(detail_url(installation), {"confirm": "uninstall"})
    assert "removes:" in text(res) and "every token issued to it" in text(res) and "stored secrets" in text(res)
    res = alice_web.get(detail_url(installation), {"confirm": "uninstall"}, HTTP_HX_REQUEST="true")
    assert "<html" not in text(res) and 'name="confirmed" value="yes"' in text(res)
    # a POST without the confirmation only asks
    res = alice_web.post(detail_url(installation), {"op": "uninstall"})
    assert res.status_code == 200 and 'name="confirmed" value="yes"' in text(res)
    assert Installation.objects.get(pk=installation.pk).status == "active"
    res = alice_web.post(detail_url(installation), {"op": "uninstall", "confirmed": "yes"})
    assert res.status_code == 302 and res["Location"] == cleanup_url(installation)
    report = CleanupReport.objects.get(installation=installation)
    page = alice_web.get(res["Location"])
    assert page.status_code == 200
    assert ("Verified" in text(page)) is report.verified
    for item in report.items:
        assert shows(page, item["label"])
    # the installation's page now leads to its report
    res = alice_web.get(detail_url(installation))
    assert res.status_code == 302 and res["Location"] == cleanup_url(installation)


def broken_cleaner(installation_id: str) -> dict:
    raise RuntimeError("the disk is on fire")


def leaky_cleaner(installation_id: str) -> dict:
    return {"label": "Leaky storage", "removed": {"rows": 2}, "remaining": {"rows": 1}}


def test_the_cleanup_report_explains_what_failed(settings, installation, alice_web):
    settings.PLAZA_INSTALL_CLEANERS = [
        *settings.PLAZA_INSTALL_CLEANERS,
        f"{__name__}.broken_cleaner",
        f"{__name__}.leaky_cleaner",
    ]
    alice_web.post(detail_url(installation), {"op": "uninstall", "confirmed": "yes"})
    page = alice_web.get(cleanup_url(installation))
    assert page.status_code == 200
    assert "Not verified" in text(page)
    assert "the disk is on fire" in text(page)
    assert "Leaky storage" in text(page) and "1 rows still there after removal" in text(page)


def test_the_cleanup_page_of_a_live_installation_leads_back(installation, alice_web):
    res = alice_web.get(cleanup_url(installation))
    assert res.status_code == 302 and res["Location"] == detail_url(installation)


def test_a_blocked_installation_says_why(installation, alice_web):
    Installation.objects.filter(pk=installation.pk).update(
        status=InstallationStatus.BLOCKED, status_reason="Your organisation never allows the scope 'kv:read'."
    )
    res = alice_web.get(detail_url(installation))
    assert "Blocked by an organisation rule." in text(res)
    assert shows(res, "Your organisation never allows the scope 'kv:read'.")
    try:
        rules = reverse("install_rules", kwargs={"org_id": installation.org_id})
    except Exception:  # the rules page (H2) may not exist yet
        rules = None
    if rules:
        assert f'href="{rules}"' in text(res)


# --- members look, outsiders see nothing -----------------------------------------------------------
def test_members_see_the_installation_without_any_button(vendor, installation, bob_web):
    vendor.release(version="1.1.0", scopes=NEW_SCOPES, config_schema=CONFIG_SCHEMA)
    res = bob_web.get(detail_url(installation))
    assert res.status_code == 200
    assert 'name="op"' not in text(res) and "s3cret" not in text(res)
    assert "Update available" in text(res)
    res = bob_web.get(detail_url(installation), {"confirm": "uninstall"})
    assert 'name="confirmed"' not in text(res)


@pytest.mark.parametrize(
    "form",
    [
        {"op": "configure", "config.tag_prefix": "bob-"},
        {"op": "settings", "channel": "beta", "update_policy": "pinned"},
        {"op": "update", "version": "ver_x"},
        {"op": "rollback", "version": "ver_x", "confirmed": "yes"},
        {"op": "uninstall", "confirmed": "yes"},
        {"op": "nonsense"},
    ],
)
def test_members_cannot_change_anything(installation, bob_web, form):
    before = Installation.objects.filter(pk=installation.pk).values().get()
    res = bob_web.post(detail_url(installation), form)
    assert res.status_code == 403
    assert "errors/403.html" in [t.name for t in res.templates]
    assert Installation.objects.filter(pk=installation.pk).values().get() == before


@pytest.mark.parametrize("page", [detail_url, cleanup_url])
def test_another_organisations_installation_is_not_found(installation, charlie_web, page):
    assert charlie_web.get(page(installation)).status_code == 404
    assert charlie_web.post(detail_url(installation), {"op": "uninstall", "confirmed": "yes"}).status_code == 404
    assert Installation.objects.get(pk=installation.pk).status == "active"


@pytest.mark.parametrize("name", ["installation_detail", "installation_cleanup"])
@pytest.mark.parametrize("method", ["get", "post"])
def test_an_installation_id_of_another_org_under_ones_own_org_is_not_found(acme, globex, v1, alice_web, name, method):
    theirs = install(globex.org, globex.owner, v1)
    url = reverse(name, kwargs={"org_id": acme.org.pk, "installation_id": theirs.pk})
    res = getattr(alice_web, method)(url, {"op": "uninstall", "confirmed": "yes"})
    assert res.status_code == 404 and "errors/404.html" in [t.name for t in res.templates]
    assert Installation.objects.get(pk=theirs.pk).status == "active"


@pytest.mark.parametrize("installation_id", ["inst_nope", "garbage", "inst_" + "x" * 500])
def test_malformed_installation_ids_are_not_found(acme, alice_web, installation_id):
    res = alice_web.get(f"/orgs/{acme.org.pk}/console/installations/{installation_id}/")
    assert res.status_code == 404


# --- hostile input ----------------------------------------------------------------------------------
NUL = "bad\x00value"


def test_hostile_input_on_every_page_is_answered_without_a_server_error(acme, v1, installation, alice_web):
    pages = [
        ("get", reverse("install_start", args=[v1.extension_id]), {"org": NUL, "channel": NUL}),
        ("get", consent_url(acme.org, v1.extension), {"channel": NUL}),
        ("post", consent_url(acme.org, v1.extension), {**consent_form(v1), "channel": NUL, "update_policy": NUL}),
        ("post", consent_url(acme.org, v1.extension), {"version": NUL, "granted_scopes": [NUL] * 500, "consent": NUL}),
        ("get", list_url(acme.org), {"status": NUL, "cursor": NUL}),
        ("get", detail_url(installation), {"confirm": NUL, "cursor": NUL}),
        ("post", detail_url(installation), {"op": NUL}),
        ("post", detail_url(installation), {"op": "settings", "channel": NUL, "update_policy": NUL}),
        ("post", detail_url(installation), {"op": "configure", "config.tag_prefix": NUL, "config.threshold": NUL}),
        ("post", detail_url(installation), {"op": "update", "version": NUL, "granted_scopes": NUL, "consent": "yes"}),
        ("post", detail_url(installation), {"op": "rollback", "version": NUL, "confirmed": "yes"}),
        ("post", detail_url(installation), {"op": "uninstall", "confirmed": NUL}),
        ("get", cleanup_url(installation), {"x": NUL}),
    ]
    for method, url, data in pages:
        res = getattr(alice_web, method)(url, data)
        assert res.status_code < 500, (method, url, data, res.status_code)
    installation.refresh_from_db()
    assert installation.status == "active" and installation.config["tag_prefix"] == "acme-"

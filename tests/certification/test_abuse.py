"""The ``abuse`` check: look-alike names, impersonation, banned words and scopes nobody uses."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import wasmtime
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from apps.certification.checks import CheckContext
from apps.certification.checks.abuse import AbuseCheck, edit_distance, names_look_alike, normalise_name
from apps.core import clock
from apps.extensions.models import Extension, ExtensionVersion
from apps.extensions.packages import build_package, read_package
from apps.orgs.models import Domain
from tests.extensions.conftest import event_catalog, publish_draft  # noqa: F401 - fixture

KV_READER = wasmtime.wat2wasm('(module (import "plaza" "kv_get" (func (param i32 i32 i32 i32) (result i32))))')

CLEAN = {
    "manifest_version": 1,
    "id": "acme.stock-sync",
    "version": "1.0.0",
    "name": "Stock Sync",
    "summary": "Keeps stock levels in step across warehouses.",
    "description": "Reads stock levels and remembers the last one it saw.",
    "scopes": ["events:read:order.created", "kv:read"],
    "modules": {"main": "modules/main.wasm"},
}


def run_check(org, manifest: dict | None = None, *, modules: dict | None = None, **overrides):
    """Run the check on a version of ``org`` with CLEAN's manifest changed by ``overrides``."""
    doc = {**(manifest or CLEAN), **overrides}
    files = modules if modules is not None else {"modules/main.wasm": KV_READER}
    extension = SimpleNamespace(org=org, org_id=org.pk, key=doc["id"])
    ctx = CheckContext(version=SimpleNamespace(manifest=doc, extension=extension))
    ctx.__dict__["package"] = read_package(build_package(files, manifest=doc))
    return AbuseCheck().run(ctx)


def rules(outcome) -> list[str]:
    return [f.rule for f in outcome.findings]


@pytest.fixture
def existing(event_catalog):  # noqa: F811 - the imported fixture
    """``existing(org, name, status=…)``: an extension of ``org`` with one version in ``status``."""

    def make(org, name: str, *, status: str = "certified", display_name: str = "") -> Extension:
        extension, version, _ = publish_draft(org, Ed25519PrivateKey.generate(), name=name, key_name=f"key-{name}")
        ExtensionVersion.objects.filter(pk=version.pk).update(status=status)
        if display_name:
            Extension.objects.filter(pk=extension.pk).update(name=display_name)
            extension.refresh_from_db()
        return extension

    return make


@pytest.mark.django_db
def test_clean_listing_has_no_findings(acme, globex, existing):
    existing(globex.org, "order-tagger", display_name="Order Tagger")

    outcome = run_check(acme.org)

    assert outcome.findings == []
    assert outcome.status == "passed"
    assert outcome.summary == "Nothing suspicious found."


# --- abuse.typosquat ------------------------------------------------------------------------------
def test_names_are_normalised_before_comparing():
    assert normalise_name("0rder-Tagger") == normalise_name("order tagger") == "ordertagger"
    assert normalise_name("Pay_Pa1") == normalise_name("paypal")
    assert normalise_name("Mode rn") == normalise_name("modem")
    assert normalise_name("ｓｔｏｃｋ") == "stock"  # full-width letters


@pytest.mark.parametrize(
    "spoof",
    [
        "ѕһор",  # Cyrillic ѕ, һ, о, р
        "SНОР",  # Cyrillic Н, О, Р
        "shορ",  # Greek ο, ρ
        "SHΟΡ",  # Greek Ο, Ρ
        "sho\u0301p",  # a combining accent
        "s\u0327h\u0308o\u0300p",
        "sh\u200bop",  # zero-width space
        "s\u200dhop\ufeff",  # zero-width joiner, BOM
        "sh\u00adop\u2060",  # soft hyphen, word joiner
    ],
)
def test_confusable_letters_marks_and_invisible_characters_do_not_evade_the_comparison(spoof):
    # under 5 characters only equal names match, so each evasion alone used to get through
    assert names_look_alike(normalise_name(spoof), normalise_name("shop"))


@pytest.mark.parametrize(
    ("spoof", "name"), [("maII", "mall"), ("MA1I", "mall"), ("Ma|l", "mall"), ("PayPaI", "paypal")]
)
def test_capital_i_one_and_l_compare_equal(spoof, name):
    assert normalise_name(spoof) == normalise_name(name)


@pytest.mark.parametrize(
    ("a", "b", "close"),
    [
        ("ordertagger", "ordertagger", True),
        ("ordertagger", "ordetragger", True),  # a swap is one edit
        ("ordertagger", "ordertaggr", True),
        ("ordertagger", "ordrtaggr", True),  # two edits, 10+ characters
        ("ordertagger", "odrtaggr", False),
        ("ordertaggers", "ordertagger", True),
        ("stock", "stack", True),  # one edit, 5 characters
        ("stock", "stuck", True),
        ("stock", "stok", True),
        ("stock", "stuk", False),
        ("shop", "shp", False),  # under 5 characters: only equal names
        ("shop", "sh0p", True),
    ],
)
def test_look_alike_thresholds(a, b, close):
    assert names_look_alike(normalise_name(a), normalise_name(b)) is close


def test_edit_distance_stops_past_the_limit():
    assert edit_distance("abcdef", "badcfe", 5) == 3
    assert edit_distance("abcdefghij", "zzzzzzzzzz", 2) == 3


@pytest.mark.django_db
def test_typosquat_of_another_publishers_certified_extension(acme, globex, existing):
    existing(globex.org, "order-tagger", display_name="Order Tagger")

    outcome = run_check(acme.org, id="acme.0rder-taggr", name="Tag My Orders")

    [finding] = outcome.findings
    assert (finding.rule, finding.severity) == ("abuse.typosquat", "error")
    assert "globex.order-tagger" in finding.message and "'Order Tagger'" in finding.message
    assert finding.location == "extension.json: id"
    assert outcome.status == "failed"


@pytest.mark.django_db
def test_typosquat_by_display_name_of_a_published_extension(acme, globex, existing):
    existing(globex.org, "inventory-pro", status="published", display_name="Inventory Pro")

    outcome = run_check(acme.org, name="lnventory Pr0")

    assert rules(outcome) == ["abuse.typosquat"]
    assert outcome.findings[0].location == "extension.json: name"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "spoof",
    [
        "Оrdеr Tаggеr",  # Cyrillic О, е, а, е: four edits before the skeleton
        "Οrder Ταgger",  # Greek Ο, Τ, α
        "O\u0301r\u0301d\u0301e\u0301r Tagger",  # combining accents
        "O\u200br\u200bd\u200be\u200br Tagger",  # zero-width spaces
        "Ｏｒｄｅｒ Ｔａｇｇｅｒ",  # full-width
    ],
)
def test_typosquat_through_confusable_characters(acme, globex, existing, spoof):
    existing(globex.org, "order-tagger", display_name="Order Tagger")

    outcome = run_check(acme.org, name=spoof)

    assert "abuse.typosquat" in rules(outcome)
    assert {f.location for f in outcome.findings if f.rule == "abuse.typosquat"} == {"extension.json: name"}


# --- abuse.mixed_script ---------------------------------------------------------------------------
@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "value", "location", "script"),
    [
        ("name", "Оrder Sync", "extension.json: name", "Cyrillic"),  # Cyrillic О
        ("name", "Stock Sync Pro\u03bf", "extension.json: name", "Greek"),  # Greek ο
        ("id", "acme.stосk-sync", "extension.json: id", "Cyrillic"),
    ],
)
def test_name_mixing_latin_with_cyrillic_or_greek_is_a_warning(acme, field, value, location, script):
    outcome = run_check(acme.org, **{field: value})

    [finding] = outcome.findings
    assert (finding.rule, finding.severity, finding.location) == ("abuse.mixed_script", "warning", location)
    assert script in finding.message
    assert outcome.status == "warned"


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["Склад", "Αποθήκη", "Stock Sync", "Ｓｔｏｃｋ Sync", "Café Stock"])
def test_names_in_one_script_are_not_mixed(acme, name):
    assert run_check(acme.org, name=name).findings == []


@pytest.mark.django_db
def test_own_look_alikes_are_not_typosquats(acme, existing):
    existing(acme.org, "stock-sync", display_name="Stock Sync")

    assert run_check(acme.org, id="acme.stock-synk").findings == []


@pytest.mark.django_db
def test_deleted_or_uncertified_look_alikes_are_not_typosquats(acme, globex, existing):
    deleted = existing(globex.org, "stock-sync", display_name="Stock Sync")
    Extension.objects.filter(pk=deleted.pk).update(deleted_at=clock.now())
    existing(globex.org, "stock-synk", status="draft")
    existing(globex.org, "stock-sinc", status="rejected")

    assert run_check(acme.org).findings == []


@pytest.mark.django_db
def test_typosquat_candidates_take_one_query(acme, globex, existing, django_assert_num_queries):
    for name in ("alpha-one", "bravo-two", "charlie-three"):
        existing(globex.org, name)
    doc = {**CLEAN, "scopes": [], "modules": {}}

    with django_assert_num_queries(2):  # look-alike candidates, verified publishers
        run_check(acme.org, doc, modules={})


# --- abuse.impersonation --------------------------------------------------------------------------
@pytest.mark.django_db
def test_mentioning_a_verified_publisher_is_impersonation(acme, globex):
    Domain.objects.create(org=globex.org, name="globex.example", verification_token="t", verified_at=clock.now())

    outcome = run_check(acme.org, summary="The GL0BEX connector for stock.")

    [finding] = outcome.findings
    assert (finding.rule, finding.severity) == ("abuse.impersonation", "error")
    assert "'Globex'" in finding.message and "'Acme'" in finding.message
    assert finding.location == "extension.json: summary"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "summary",
    [
        "The Glоbеx connector for stock.",  # Cyrillic о, е
        "The Glοbex connector for stock.",  # Greek ο
        "The Glo\u0301bex connector for stock.",  # combining accent
        "The Gl\u200bobex connector for stock.",  # zero-width space
        "The GIobex connector for stock.",  # capital I for l
    ],
)
def test_impersonation_through_confusable_characters(acme, globex, summary):
    Domain.objects.create(org=globex.org, name="globex.example", verification_token="t", verified_at=clock.now())

    outcome = run_check(acme.org, summary=summary)

    assert [(f.rule, f.location) for f in outcome.findings] == [("abuse.impersonation", "extension.json: summary")]


@pytest.mark.django_db
def test_unverified_or_own_or_partial_names_are_not_impersonation(acme, globex):
    Domain.objects.create(org=globex.org, name="globex.example", verification_token="t")  # not verified
    Domain.objects.create(org=acme.org, name="acme.example", verification_token="t", verified_at=clock.now())

    assert run_check(acme.org, summary="Acme's stock sync; works like Globex's.").findings == []

    Domain.objects.filter(org=globex.org).update(verified_at=clock.now())
    assert run_check(acme.org, summary="Globexian stock sync.").findings == []  # not the whole word


# --- abuse.banned_word ----------------------------------------------------------------------------
@pytest.mark.django_db
def test_banned_words_in_the_listing(acme, settings):
    settings.PLAZA_BANNED_WORDS = ["official", "free money"]

    outcome = run_check(acme.org, name="Official Stock Sync", description="Earn FREE\nmoney while syncing.")

    assert [(f.rule, f.location) for f in outcome.findings] == [
        ("abuse.banned_word", "extension.json: name"),
        ("abuse.banned_word", "extension.json: description"),
    ]
    assert "'official'" in outcome.findings[0].message


@pytest.mark.django_db
@pytest.mark.parametrize(
    "summary",
    [
        "The оfficial stock sync.",  # Cyrillic о
        "The οfficial stock sync.",  # Greek ο
        "The off\u200bicial stock sync.",  # zero-width space
        "The offi\u200dcial\ufeff stock sync.",  # zero-width joiner, BOM
        "The 0fficial stock sync.",  # zero for o
        "The officiaI stock sync.",  # capital I for l
        "The officia1 stock sync.",  # one for l
        "The o\u0301fficial stock sync.",  # combining accent
        "The ＯＦＦＩＣＩＡＬ stock sync.",  # full-width
        "Earn free m0ney while syncing.",
    ],
)
def test_banned_words_through_confusable_characters(acme, settings, summary):
    settings.PLAZA_BANNED_WORDS = ["official", "free money"]

    outcome = run_check(acme.org, summary=summary)

    assert [(f.rule, f.location) for f in outcome.findings] == [("abuse.banned_word", "extension.json: summary")]


@pytest.mark.django_db
def test_banned_words_match_whole_words_only(acme, settings):
    settings.PLAZA_BANNED_WORDS = ["hack"]

    assert run_check(acme.org, summary="Built at a hackathon; shackles nothing.").findings == []


# --- abuse.excessive_scopes, abuse.unused_scope ---------------------------------------------------
@pytest.mark.django_db
def test_too_many_scopes_warn(acme):
    scopes = ["kv:read"] + [f"events:read:thing.{i}" for i in range(12)]

    outcome = run_check(acme.org, scopes=scopes)

    [finding] = outcome.findings
    assert (finding.rule, finding.severity) == ("abuse.excessive_scopes", "warning")
    assert "13 scopes" in finding.message
    assert outcome.status == "warned"


@pytest.mark.django_db
def test_capability_scope_without_its_host_function_is_unused(acme):
    scopes = ["kv:read", "kv:write", "http:fetch:api.example.com", "events:emit:stock.changed"]

    outcome = run_check(acme.org, scopes=scopes)

    unused = {f.message.split()[2]: f for f in outcome.findings}
    assert rules(outcome) == ["abuse.unused_scope"] * 3
    assert set(unused) == {"kv:write", "http:fetch:api.example.com", "events:emit:stock.changed"}
    assert "plaza.kv_delete or plaza.kv_set" in unused["kv:write"].message
    assert unused["kv:write"].location == "extension.json: scopes"


@pytest.mark.django_db
def test_unused_scope_suggests_the_narrower_scope_the_module_needs(acme):
    outcome = run_check(acme.org, scopes=["kv:write"])

    [finding] = outcome.findings
    assert finding.rule == "abuse.unused_scope"
    assert "declare that instead of kv:write" in finding.hint and "kv:read" in finding.hint


@pytest.mark.django_db
def test_modules_that_do_not_compile_are_left_to_other_checks(acme):
    outcome = run_check(acme.org, scopes=["kv:write"], modules={"modules/main.wasm": b"\x00asm junk"})

    assert outcome.findings == []

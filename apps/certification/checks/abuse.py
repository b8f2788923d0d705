"""The ``abuse`` check: heuristics for listings that mislead merchants. Heuristics can be wrong, so
the check is not required: a failure sends the run to staff review instead of rejecting it.

All text is compared as a *skeleton* (:func:`skeleton`): Unicode compatibility forms (NFKD),
without combining marks and invisible format characters, with Cyrillic and Greek letters that look
like Latin ones turned into those, case-folded, and with look-alikes merged (0/o, 1/l/I/i, 3/e, 5/s,
rn/m, vv/w), so ``"оff\u200bicia1"`` (Cyrillic о) reads as ``"official"``.

- ``abuse.typosquat``: the extension's name (the part of its id after the dot) or display name
  looks like the name of a certified or published extension of another publisher. The skeletons,
  without separators, are equal, or at most 1 edit apart (the longer name has 5+ characters) or 2
  edits apart (10+ characters), where swapping two neighbouring characters is one edit.
- ``abuse.impersonation``: the id, name, summary or description names a verified publisher (an
  organisation with a verified domain) other than the publisher, as a whole word or phrase.
- ``abuse.banned_word``: the name, summary or description contains one of
  ``settings.PLAZA_BANNED_WORDS`` (whole words or phrases, compared as skeletons).
- ``abuse.mixed_script``: the extension's name or display name mixes Latin letters with Cyrillic or
  Greek ones (a classic way to spoof a name).
- ``abuse.excessive_scopes``: more than ``MAX_SCOPES`` scopes.
- ``abuse.unused_scope``: a capability scope whose ``plaza`` host functions no module imports
  (which function needs which scope is ``apps.runtime.host.CAPABILITY_OF``). Judged only when every
  declared module compiles: another check reports those that do not.
"""

from __future__ import annotations

import re
import unicodedata

import wasmtime
from django.conf import settings

from apps.certification.checks import ERROR, WARNING, Check, CheckContext, CheckOutcome, Finding
from apps.core.errors import ValidationFailed
from apps.runtime import host

MAX_SCOPES = 12
MAX_LOOKALIKES = 10  # findings listed per run; one is enough to send it to review
HOST_MODULE = "plaza"  # the import module of Plaza's host functions

_SEPARATORS = re.compile(r"[\s\-_.]+")
# Cyrillic and Greek letters that look like Latin ones (after NFKD, which already turns full-width
# and mathematical forms into plain Latin). Case matters: Greek Η looks like H, its η like n.
_CONFUSABLE_LETTERS = str.maketrans(
    dict(zip(
        "АВЕЅІЈКМНОРСТУХҮҺԚԜӀ" "аеіјорсухѕһԁԛԝӏүьвкмнтпг"
        "ΑΒΕΖΗΙΚΜΝΟΡΤΥΧ" "αβγεηικνορτυχωμ" "ıɑɡʟǀ|",
        "ABESIJKMHOPCTYXYHQWI" "aeijopcyxshdqwlybbkmhtnr"
        "ABEZHIKMNOPTYX" "abyeniknoptuxwu" "ialll1",
        strict=True,
    ))
)  # fmt: skip
# After case folding: characters merged with the one they are mistaken for (i, l, 1 and I are one).
_CONFUSABLE_CHARACTERS = str.maketrans({"0": "o", "1": "l", "i": "l", "3": "e", "5": "s"})
_CONFUSABLE_PAIRS = (("rn", "m"), ("vv", "w"))
# Invisible characters that are neither marks nor format characters (Hangul fillers, braille blank).
_INVISIBLE = str.maketrans(dict.fromkeys(map(ord, "\u115f\u1160\u3164\uffa0\u2800")))
_DROPPED_CATEGORIES = frozenset({"Mn", "Me", "Cf"})  # combining marks, format characters (zero-width, BOM)
_LOOKALIKE_SCRIPTS = frozenset({"CYRILLIC", "GREEK"})
_WORD_SPLIT = re.compile(r"[\W_]+")
_LISTING_FIELDS = ("name", "summary", "description")


# --- names --------------------------------------------------------------------------------------
def _strip(text: str) -> str:
    """NFKD without combining marks and invisible characters: ``"o\u0301ff\u200bice"`` is ``"office"``."""
    text = unicodedata.normalize("NFKD", text).translate(_INVISIBLE)
    return "".join(ch for ch in text if unicodedata.category(ch) not in _DROPPED_CATEGORIES)


def _characters(text: str) -> str:
    """The character-by-character part of the skeleton (words and separators stay where they are)."""
    return _strip(_strip(text).translate(_CONFUSABLE_LETTERS).casefold()).translate(_CONFUSABLE_CHARACTERS)


def _unpair(text: str) -> str:
    for pair, single in _CONFUSABLE_PAIRS:
        text = text.replace(pair, single)
    return text


def skeleton(text: str) -> str:
    """The form text is compared in: look-alike spellings of a word have the same skeleton."""
    return _unpair(_characters(text))


def normalise_name(text: str) -> str:
    """The form two names are compared in: ``"0rder-Tagger"``, ``"order tagger"`` and ``"Оrdеr Tаgger"``
    (Cyrillic О, е, а) are equal."""
    return _unpair(_SEPARATORS.sub("", _characters(text)))


def lookalike_scripts(text: str) -> set[str]:
    """The Cyrillic and Greek scripts of the letters in ``text`` if it also has Latin letters, else nothing."""
    scripts = {
        unicodedata.name(ch, "").partition(" ")[0]
        for ch in unicodedata.normalize("NFKD", text)
        if unicodedata.category(ch).startswith("L")
    }
    return scripts & _LOOKALIKE_SCRIPTS if "LATIN" in scripts else set()


def edit_distance(a: str, b: str, limit: int) -> int:
    """Damerau-Levenshtein distance (optimal string alignment: insert, delete, substitute, swap two
    neighbours), or ``limit + 1`` as soon as it is known to exceed ``limit``."""
    if a == b:
        return 0
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    before: list[int] = []
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            value = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                value = min(value, before[j - 2] + 1)
            current[j] = value
        if min(current) > limit:
            return limit + 1
        before, previous = previous, current
    return previous[-1]


def names_look_alike(a: str, b: str) -> bool:
    """Whether two normalised names are too close for merchants to tell apart."""
    if not a or not b:
        return False
    if a == b:
        return True
    # By the longer name: dropping letters from a 10-letter name is still a typo of it.
    longest = max(len(a), len(b))
    limit = 2 if longest >= 10 else 1 if longest >= 5 else 0
    return limit > 0 and edit_distance(a, b, limit) <= limit


def _words(text: str) -> tuple[str, ...]:
    return tuple(_unpair(word) for word in _WORD_SPLIT.split(_characters(text)) if word)


def _phrases(words: tuple[str, ...], longest: int) -> set[tuple[str, ...]]:
    return {words[i : i + n] for n in range(1, longest + 1) for i in range(len(words) - n + 1)}


def _text(value) -> str:
    return value if isinstance(value, str) else ""


# --- the check ----------------------------------------------------------------------------------
class AbuseCheck(Check):
    id = "abuse"
    version = 2
    title = "Abuse heuristics"
    required = False

    def run(self, ctx: CheckContext) -> CheckOutcome:
        findings = [
            *self._typosquats(ctx),
            *self._mixed_scripts(ctx),
            *self._impersonations(ctx),
            *self._banned_words(ctx),
            *self._scopes(ctx),
        ]
        errors = sum(f.severity == ERROR for f in findings)
        warnings = len(findings) - errors
        if not findings:
            summary = "Nothing suspicious found."
        else:
            parts = [
                f"{n} {word}{'s' if n != 1 else ''}" for n, word in ((errors, "problem"), (warnings, "warning")) if n
            ]
            summary = f"{' and '.join(parts)} for staff to review."
        return CheckOutcome(summary, findings, {"findings": len(findings)})

    # -- abuse.typosquat
    def _typosquats(self, ctx: CheckContext) -> list[Finding]:
        from apps.extensions.models import Extension, VersionStatus

        extension = ctx.version.extension
        ours = [
            ("id", extension.key.partition(".")[2]),
            ("name", _text(ctx.manifest.get("name"))),
        ]
        ours = [(where, text, normalise_name(text)) for where, text in ours if text.strip()]
        if not ours:
            return []
        candidates = (
            Extension.objects.filter(
                deleted_at__isnull=True, versions__status__in=[VersionStatus.CERTIFIED, VersionStatus.PUBLISHED]
            )
            .exclude(org_id=extension.org_id)
            .values_list("key", "name")
            .distinct()
        )
        findings = []
        for key, name in candidates:
            theirs = {normalise_name(key.partition(".")[2]), normalise_name(name)}
            match = next(
                ((where, text) for where, text, mine in ours if any(names_look_alike(mine, t) for t in theirs)), None
            )
            if match is None:
                continue
            where, text = match
            findings.append(
                Finding(
                    "abuse.typosquat",
                    ERROR,
                    f"The {'extension name' if where == 'id' else 'display name'} {text!r} looks like {name!r} "
                    f"({key}), an extension of another publisher that merchants already use.",
                    location=f"extension.json: {where}",
                    hint="Choose a name merchants cannot mistake for an existing extension. If you also publish "
                    f"{key}, publish this version from that organisation. Staff review this before certifying.",
                )
            )
            if len(findings) >= MAX_LOOKALIKES:
                break
        return findings

    # -- abuse.mixed_script
    def _mixed_scripts(self, ctx: CheckContext) -> list[Finding]:
        names = [("id", ctx.version.extension.key.partition(".")[2]), ("name", _text(ctx.manifest.get("name")))]
        findings = []
        for where, text in names:
            scripts = lookalike_scripts(text)
            if not scripts:
                continue
            what = "extension name" if where == "id" else "display name"
            findings.append(
                Finding(
                    "abuse.mixed_script",
                    WARNING,
                    f"The {what} {text!r} mixes Latin letters with {' and '.join(s.title() for s in sorted(scripts))} "
                    "ones, a common way to make a name look like another.",
                    location=f"extension.json: {where}",
                    hint=f"Write the {what} in one script. If the mix is genuine (a name in two languages), staff "
                    "will confirm it in review.",
                )
            )
        return findings

    # -- abuse.impersonation
    def _impersonations(self, ctx: CheckContext) -> list[Finding]:
        from apps.orgs.models import Organization

        fields = [("id", _text(ctx.manifest.get("id")) or ctx.version.extension.key)]
        fields += [(name, _text(ctx.manifest.get(name))) for name in _LISTING_FIELDS]
        fields = [(where, _words(text)) for where, text in fields if text.strip()]
        if not fields:
            return []
        verified = (
            Organization.objects.filter(domains__verified_at__isnull=False)
            .exclude(pk=ctx.version.extension.org_id)
            .values_list("name", "slug")
            .distinct()
        )
        publishers = []
        for name, slug in verified:
            forms = {_words(name), _words(slug)}
            forms |= {("".join(form),) for form in list(forms)}
            forms = {form for form in forms if len("".join(form)) >= 4}
            if forms:
                publishers.append((name, forms))
        if not publishers:
            return []
        longest = max(len(form) for _, forms in publishers for form in forms)
        texts = [(where, _phrases(words, longest)) for where, words in fields]
        findings = []
        for name, forms in publishers:
            where = next((where for where, phrases in texts if forms & phrases), None)
            if where is None:
                continue
            findings.append(
                Finding(
                    "abuse.impersonation",
                    ERROR,
                    f"The extension's {where} names {name!r}, a verified publisher, but it is published by "
                    f"{ctx.org.name!r}.",
                    location=f"extension.json: {where}",
                    hint=f"Do not use another publisher's name in your listing unless you are that publisher. If "
                    f"{name} made or endorsed this extension, publish it from their organisation; a compatibility "
                    'note ("works with …") goes in the description, and staff will review it.',
                )
            )
        return findings

    # -- abuse.banned_word
    def _banned_words(self, ctx: CheckContext) -> list[Finding]:
        findings = []
        for word in getattr(settings, "PLAZA_BANNED_WORDS", ()):
            parts = [re.escape(part) for part in _words(str(word))]
            if not parts:
                continue
            pattern = re.compile(r"(?<![^\W_])" + r"[\W_]+".join(parts) + r"(?![^\W_])")
            for where in _LISTING_FIELDS:
                if pattern.search(skeleton(_text(ctx.manifest.get(where)))):
                    findings.append(
                        Finding(
                            "abuse.banned_word",
                            ERROR,
                            f"The listing's {where} contains {word!r}, which listings may not use.",
                            location=f"extension.json: {where}",
                            hint=f"Reword the {where} without {word!r}: Plaza decides what is verified or official, "
                            "and such words mislead merchants.",
                        )
                    )
        return findings

    # -- abuse.excessive_scopes, abuse.unused_scope
    def _scopes(self, ctx: CheckContext) -> list[Finding]:
        declared = ctx.manifest.get("scopes")
        scopes = list(dict.fromkeys(s for s in declared if isinstance(s, str))) if isinstance(declared, list) else []
        findings = []
        if len(scopes) > MAX_SCOPES:
            findings.append(
                Finding(
                    "abuse.excessive_scopes",
                    WARNING,
                    f"The extension asks for {len(scopes)} scopes; more than {MAX_SCOPES} is unusual.",
                    location="extension.json: scopes",
                    hint="Ask only for what the extension uses: merchants see every scope when they install it, and "
                    "a long list makes them (and staff) wonder why.",
                )
            )
        needs = {scope: _functions_needing(scope) for scope in scopes}
        needs = {scope: functions for scope, functions in needs.items() if functions}
        if not needs:
            return findings
        imported = self._imported_functions(ctx)
        if imported is None:
            return findings
        for scope, functions in needs.items():
            if functions & imported:
                continue
            names = " or ".join(f"{HOST_MODULE}.{f}" for f in sorted(functions))
            # A broader scope also links narrower functions (kv:write links kv_get): suggest the narrower one.
            linked = set(host.functions_for(host.capabilities_of([scope]))) & imported
            narrower = sorted({host.CAPABILITY_OF[f] for f in linked if host.CAPABILITY_OF[f]} - set(scopes))
            hint = (
                f"The modules only use what {', '.join(narrower)} grants: declare that instead of {scope}."
                if narrower
                else f"Remove {scope} from extension.json if the extension does not need it; merchants see every "
                "scope when they install, and unused ones make the extension look greedier than it is."
            )
            findings.append(
                Finding(
                    "abuse.unused_scope",
                    WARNING,
                    f"The scope {scope} is declared, but no module imports {names}, the host function it grants.",
                    location="extension.json: scopes",
                    hint=hint,
                )
            )
        return findings

    @staticmethod
    def _imported_functions(ctx: CheckContext) -> set[str] | None:
        """The ``plaza`` functions the modules import; None if a module is missing or does not compile."""
        from apps.runtime.engine import runtime

        modules = ctx.manifest.get("modules")
        names = list(modules) if isinstance(modules, dict) else []
        imported: set[str] = set()
        for name in names:
            try:
                data = ctx.module_bytes(name)
                if data is None or len(data) > settings.PLAZA_MODULE_MAX_BYTES:
                    return None
                module = wasmtime.Module(runtime().engine, data)
            except (ValidationFailed, wasmtime.WasmtimeError, TypeError, ValueError):
                return None
            imported |= {item.name for item in module.imports if item.module == HOST_MODULE and item.name}
        return imported


def _functions_needing(scope: str) -> set[str]:
    """The host functions whose scope (``host.CAPABILITY_OF``) ``scope`` is; ``<…>`` stands for any suffix."""
    return {function for function, pattern in host.CAPABILITY_OF.items() if pattern and _fits(pattern, scope)}


def _fits(pattern: str, scope: str) -> bool:
    prefix, placeholder, _ = pattern.partition("<")
    return len(scope) > len(prefix) and scope.startswith(prefix) if placeholder else scope == pattern

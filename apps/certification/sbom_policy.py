"""The SBOM policy: which components (dependencies) a certified extension may ship, judged from its
CycloneDX SBOM (``sbom.cdx.json``). Pure: :func:`evaluate` takes the components and the rules and
returns findings; the ``sbom`` check (``checks/sbom.py``) loads the rules and reports.

Semantics (docs/certification.md repeats them for publishers):

- **Which rules.** The platform's rules (no org) plus the publisher org's own rules.
- **Matching.** A rule matches a component when every field it sets matches: ``name`` is a glob
  (fnmatch, case-insensitive), ``version_range`` an npm-style range (``semantic_version.NpmSpec``),
  ``license`` an SPDX id that is one of the symbols of the component's licence expression
  (case-insensitive, aliases such as ``GPL-2.0`` folded to ``GPL-2.0-only``; in ``X WITH Y`` both
  ``X`` and ``Y`` are symbols). A blank field matches anything.
- **Licence expressions.** Each entry of a component's ``licenses`` is parsed as an SPDX expression
  (``MIT OR Apache-2.0``, ``GPL-2.0-only WITH Classpath-exception-2.0``, or a plain name). Several
  entries must all hold (they are joined with AND): a publisher offering a choice writes one
  ``OR`` expression. ``OR`` needs one acceptable branch, ``AND`` needs all of them.
- **Deny wins** (ERROR ``sbom.denied``). A matching deny rule that sets no licence denies the
  component outright, whatever allows it. A deny rule on a licence denies the component when its
  expression cannot be satisfied without a denied licence: ``AGPL-3.0-only`` and
  ``MIT AND AGPL-3.0-only`` are denied, ``MIT OR AGPL-3.0-only`` is not (the MIT branch is taken).
- **Licence allow-list** (ERROR ``sbom.license_not_allowed``). Allow rules that set only a licence
  form the allow-list; when there is one, a component's expression must be satisfiable with allowed
  licences. ``X WITH Y`` is allowed when ``X`` (or the whole ``X WITH Y``) is: an exception only
  adds permissions. Licences that are not known SPDX ids are neither allowed nor refused here: they
  are undecided (three-valued logic), so a component that depends on one is only warned about.
- **Unknown licences warn** (WARNING ``sbom.license_unknown``): no licence at all, a licence that does
  not parse, or a symbol that is not a known SPDX id (``LicenseRef-…`` included).
- **Named allow.** An allow rule that sets a name and matches the component exempts it from the
  allow-list and from the unknown-licence warning (staff looked at it). It does not override a deny.
  An allow rule that sets neither a name nor only a licence has no effect and is reported invalid.
- **Versions.** A component version that is not a semantic version (a leading ``v`` and missing
  parts are tolerated: ``v1.2`` is 1.2.0) never matches a range; the first time that matters for a
  component it is noted once (INFO ``sbom.version_unparsed``).
- **Broken rules.** A stored rule with an invalid field (a range or licence that does not parse, an
  unknown effect) is skipped and noted (INFO ``sbom.rule_invalid``): the check never crashes on one.
- **Measurements.** ``components``, one count per outcome (``passed``, ``denied``,
  ``license_not_allowed``, ``license_unknown``; a component counts once, under its worst outcome),
  ``allowed_by_name`` and the number of ``rules`` applied.

At most ``MAX_FINDINGS_PER_RULE`` findings of one rule id are listed; one more finding counts the rest.
"""

from __future__ import annotations

import fnmatch
import functools
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import semantic_version
from license_expression import (
    AND,
    OR,
    ExpressionError,
    LicenseSymbol,
    LicenseWithExceptionSymbol,
    get_spdx_licensing,
)

from apps.certification.checks import ERROR, INFO, WARNING, Finding
from apps.extensions.packages.sbom import SBOM_PATH, SbomComponent

ALLOW, DENY = "allow", "deny"
MAX_FINDINGS_PER_RULE = 50
SPDX_LIST_URL = "https://spdx.org/licenses/"

# The platform rules a new installation starts with (migration 0002 copies this list literally).
DEFAULT_RULES: tuple[dict[str, str], ...] = (
    *(
        {"effect": ALLOW, "license": spdx_id, "reason": "Permissive licence."}
        for spdx_id in (
            "MIT",
            "Apache-2.0",
            "BSD-2-Clause",
            "BSD-3-Clause",
            "ISC",
            "0BSD",
            "Zlib",
            "Unlicense",
            "MPL-2.0",
            "CC0-1.0",
            "BSL-1.0",
            "Python-2.0",
        )
    ),
    *(
        {
            "effect": DENY,
            "license": spdx_id,
            "reason": "Network copyleft: it would oblige every merchant running the extension to publish source code.",
        }
        for spdx_id in ("AGPL-3.0-only", "AGPL-3.0-or-later", "SSPL-1.0")
    ),
    {
        "effect": DENY,
        "name": "event-stream",
        "version_range": "3.3.6",
        "reason": "Compromised release (November 2018): it pulls in flatmap-stream, which steals bitcoin wallets.",
    },
)


@dataclass(frozen=True)
class PolicyRule:
    """One SBOM rule as the evaluator sees it (``SbomRule`` rows are turned into these)."""

    id: str
    effect: str
    name: str = ""
    version_range: str = ""
    license: str = ""
    reason: str = ""
    org_id: str | None = None  # None: a platform rule

    @classmethod
    def from_model(cls, rule) -> PolicyRule:
        return cls(
            id=rule.pk,
            effect=rule.effect,
            name=rule.name.strip(),
            version_range=rule.version_range.strip(),
            license=rule.license.strip(),
            reason=rule.reason.strip(),
            org_id=rule.org_id,
        )

    def describe(self) -> str:
        parts = [f"name {self.name}" if self.name else "", self.version_range, self.license]
        what = " ".join(p for p in parts if p) or "any component"
        return f"{self.id} ({self.effect} {what})"

    @property
    def owner(self) -> str:
        return "the platform's SBOM policy" if self.org_id is None else "your organisation's SBOM policy"


@dataclass
class PolicyReport:
    findings: list[Finding] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)  # per component, in SBOM order
    measurements: dict = field(default_factory=dict)


# --- licences -----------------------------------------------------------------------------------
@functools.cache
def _licensing():
    return get_spdx_licensing()


@dataclass(frozen=True)
class _Term:
    """A leaf of a licence expression: ``X`` or ``X WITH Y`` (or a name that did not parse)."""

    text: str
    base: str  # X, casefolded
    symbols: frozenset[str]  # what rules may name: X, Y and "X WITH Y", casefolded
    known: bool  # X is an SPDX licence id (and Y an SPDX exception id)


# A licence expression as a tree: a _Term, or ("and" | "or", [children]).
_Tree = _Term | tuple


def _is_spdx(symbol, *, exception: bool) -> bool:
    key = getattr(symbol, "key", "")
    return (
        key in _licensing().known_symbols
        and not key.startswith("LicenseRef-")
        and bool(getattr(symbol, "is_exception", False)) == exception
    )


def _term(node) -> _Term:
    if isinstance(node, LicenseWithExceptionSymbol):
        base, exception = node.license_symbol, node.exception_symbol
        known = _is_spdx(base, exception=False) and _is_spdx(exception, exception=True)
        symbols = {base.key.casefold(), exception.key.casefold(), f"{base.key} WITH {exception.key}".casefold()}
        return _Term(f"{base.key} WITH {exception.key}", base.key.casefold(), frozenset(symbols), known)
    return _Term(node.key, node.key.casefold(), frozenset({node.key.casefold()}), _is_spdx(node, exception=False))


def _tree(node) -> _Tree:
    if isinstance(node, (LicenseSymbol, LicenseWithExceptionSymbol)):
        return _term(node)
    if isinstance(node, (AND, OR)):
        return ("and" if isinstance(node, AND) else "or", [_tree(arg) for arg in node.args])
    raise ExpressionError(f"unexpected node {type(node).__name__}")


@functools.lru_cache(maxsize=4096)
def _parse(text: str) -> _Tree | None:
    """One licence entry as a tree; a name that is no expression is one unknown term."""
    try:
        node = _licensing().parse(text, validate=False)
        return None if node is None else _tree(node)
    except (ExpressionError, AttributeError, TypeError):
        cleaned = text.strip()
        return _Term(cleaned, cleaned.casefold(), frozenset({cleaned.casefold()}), False)


def _component_tree(licenses: Sequence[str]) -> _Tree | None:
    trees = [tree for tree in map(_parse, licenses) if tree is not None]
    if not trees:
        return None
    return trees[0] if len(trees) == 1 else ("and", trees)


def _terms(tree: _Tree | None) -> list[_Term]:
    if tree is None:
        return []
    if isinstance(tree, _Term):
        return [tree]
    return [term for child in tree[1] for term in _terms(child)]


def _holds(tree: _Tree, value: Callable[[_Term], bool | None]) -> bool | None:
    """Three-valued (Kleene) evaluation: True, False, or None for undecided."""
    if isinstance(tree, _Term):
        return value(tree)
    results = [_holds(child, value) for child in tree[1]]
    if tree[0] == "or":
        return True if True in results else (None if None in results else False)
    return False if False in results else (None if None in results else True)


def _canonical_license(text: str) -> str:
    """A rule's licence as the key it matches (casefolded); ValueError if it is not one licence."""
    try:
        node = _licensing().parse(text, validate=False)
    except (ExpressionError, AttributeError, TypeError) as exc:
        raise ValueError(f"the licence {text!r} does not parse: {exc}") from None
    if not isinstance(node, (LicenseSymbol, LicenseWithExceptionSymbol)):
        raise ValueError(f"the licence {text!r} must be one SPDX id, not an expression")
    return _term(node).text.casefold()


# --- rules --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Compiled:
    rule: PolicyRule
    name: str  # casefolded glob, "" for any
    spec: semantic_version.NpmSpec | None
    license: str  # casefolded key, "" for any

    @property
    def license_only(self) -> bool:
        return bool(self.license) and not self.name and self.spec is None


def _compile(rule: PolicyRule) -> _Compiled:
    if rule.effect not in (ALLOW, DENY):
        raise ValueError(f"its effect {rule.effect!r} is neither allow nor deny")
    try:
        spec = semantic_version.NpmSpec(rule.version_range) if rule.version_range else None
    except ValueError as exc:
        raise ValueError(f"its version range {rule.version_range!r} is not an npm-style range: {exc}") from None
    license_key = _canonical_license(rule.license) if rule.license else ""
    compiled = _Compiled(rule, rule.name.casefold(), spec, license_key)
    if rule.effect == ALLOW and not rule.name and not compiled.license_only:
        raise ValueError("an allow rule must name a component or set only a licence; this one has no effect")
    return compiled


def _version(text: str) -> semantic_version.Version | None:
    text = text.strip()
    if text[:1] in ("v", "V") and text[1:2].isdigit():
        text = text[1:]
    try:
        return semantic_version.Version.coerce(text)
    except ValueError:
        return None


@dataclass
class _Subject:
    """One component under evaluation, with what was derived from it."""

    index: int
    component: SbomComponent
    tree: _Tree | None
    version: semantic_version.Version | None
    version_noted: bool = False

    @property
    def location(self) -> str:
        return f"{SBOM_PATH}: components[{self.index}]"

    @property
    def label(self) -> str:
        version = self.component.version.strip()
        return f"{self.component.name} {version}" if version else self.component.name

    @functools.cached_property
    def symbols(self) -> frozenset[str]:
        return frozenset(symbol for term in _terms(self.tree) for symbol in term.symbols)


class _Evaluation:
    def __init__(self, rules: Iterable[PolicyRule]):
        self.findings: list[Finding] = []
        self.rules: list[_Compiled] = []
        for rule in rules:
            try:
                self.rules.append(_compile(rule))
            except ValueError as exc:
                self.findings.append(
                    Finding(
                        "sbom.rule_invalid",
                        INFO,
                        f"The SBOM rule {rule.describe()} of {rule.owner} was skipped: {exc}.",
                        location=f"SBOM rule {rule.id}",
                        hint="Nothing to change in your package. Whoever manages this SBOM policy should fix or "
                        "delete the rule.",
                    )
                )
        self.denies = [r for r in self.rules if r.rule.effect == DENY]
        self.named_allows = [r for r in self.rules if r.rule.effect == ALLOW and r.name]
        # casefolded licence -> as the rule spells it (for hints)
        self.allowed = {r.license: r.rule.license for r in self.rules if r.rule.effect == ALLOW and r.license_only}

    def matches(self, compiled: _Compiled, subject: _Subject) -> bool:
        if compiled.name and not fnmatch.fnmatchcase(subject.component.name.casefold(), compiled.name):
            return False
        if compiled.license and compiled.license not in subject.symbols:
            return False
        if compiled.spec is None:
            return True
        if subject.version is None:
            self.note_version(subject)
            return False
        return compiled.spec.match(subject.version)

    def note_version(self, subject: _Subject) -> None:
        if subject.version_noted:
            return
        subject.version_noted = True
        version = subject.component.version.strip()
        what = f"version {version!r} is not a semantic version" if version else "has no version"
        self.findings.append(
            Finding(
                "sbom.version_unparsed",
                INFO,
                f"The component {subject.component.name}: {what}, so rules for version ranges do not apply to it.",
                location=subject.location,
                hint="Give the component's version as a semantic version (for example 1.2.3) in sbom.cdx.json; "
                "your SBOM generator normally copies it from the lock file.",
            )
        )

    def denial(self, subject: _Subject) -> tuple[_Compiled, int] | None:
        """The first deny rule that denies the component, and how many others also do."""
        matching = [r for r in self.denies if self.matches(r, subject)]
        outright = [r for r in matching if not r.license]
        by_license = [r for r in matching if r.license]
        if by_license and subject.tree is not None:
            denied = {r.license for r in by_license}
            avoidable = _holds(subject.tree, lambda term: not (term.symbols & denied))
            if avoidable:
                by_license = []
        blocking = outright + by_license
        return (blocking[0], len(blocking) - 1) if blocking else None

    def evaluate(self, subject: _Subject) -> str:
        component = subject.component
        denial = self.denial(subject)
        if denial:
            rule, others = denial
            more = f" (and {others} more rule{'s' if others > 1 else ''})" if others else ""
            reason = rule.rule.reason or "no reason given"
            self.findings.append(
                Finding(
                    "sbom.denied",
                    ERROR,
                    f"The component {subject.label} is denied by {rule.rule.owner}, rule {rule.rule.describe()}"
                    f"{more}: {reason}",
                    location=subject.location,
                    hint=self.denied_hint(rule, component),
                )
            )
            return "denied"
        if any(self.matches(r, subject) for r in self.named_allows):
            return "allowed_by_name"
        outcome = "passed"
        if self.allowed and subject.tree is not None:
            verdict = _holds(subject.tree, self.allowed_term)
            if verdict is False:
                refused = sorted({t.text for t in _terms(subject.tree) if t.known and not self.allowed_term(t)})
                are = "is" if len(refused) == 1 else "are"
                self.findings.append(
                    Finding(
                        "sbom.license_not_allowed",
                        ERROR,
                        f"The component {subject.label} is licensed under {self.expression(subject)}, which the "
                        f"SBOM policy does not allow ({', '.join(refused)} {are} not on the allowed list).",
                        location=subject.location,
                        hint="Replace it with a component under an allowed licence ("
                        + ", ".join(sorted(self.allowed.values(), key=str.casefold))
                        + "). If the component is also offered under an allowed licence, say so with an OR "
                        'expression (for example "MIT OR GPL-3.0-only"). Plaza staff can allow a specific '
                        "component by name after reviewing it.",
                    )
                )
                outcome = "license_not_allowed"
        unknown = self.unknown(subject)
        if unknown:
            self.findings.append(
                Finding(
                    "sbom.license_unknown",
                    WARNING,
                    f"The component {subject.label} {unknown}; Plaza staff will review it before certifying.",
                    location=subject.location,
                    hint="Give each component's licence as an SPDX id or expression ("
                    + SPDX_LIST_URL
                    + '), for example {"license": {"id": "MIT"}}. If the licence has no SPDX id, staff will '
                    "read it during review.",
                )
            )
            outcome = outcome if outcome != "passed" else "license_unknown"
        return outcome

    def allowed_term(self, term: _Term) -> bool | None:
        if term.base in self.allowed or term.text.casefold() in self.allowed:
            return True
        return False if term.known else None

    @staticmethod
    def unknown(subject: _Subject) -> str:
        if subject.tree is None:
            return "declares no licence"
        unknown = sorted({term.text for term in _terms(subject.tree) if not term.known})
        if not unknown:
            return ""
        names = ", ".join(repr(u) for u in unknown)
        if len(unknown) == 1:
            return f"has a licence that is not a known SPDX id: {names}"
        return f"has licences that are not known SPDX ids: {names}"

    @staticmethod
    def expression(subject: _Subject) -> str:
        licenses = subject.component.licenses
        return " AND ".join(f"({text})" if len(licenses) > 1 and " " in text else text for text in licenses)

    @staticmethod
    def denied_hint(rule: _Compiled, component: SbomComponent) -> str:
        if rule.license:
            return (
                f"Remove {component.name} or replace it with a component under another licence. If it is also "
                "offered under an acceptable licence, declare that with an OR expression in sbom.cdx.json."
            )
        if rule.spec is not None:
            return (
                f"Use a version of {component.name} outside {rule.rule.version_range} (or remove it), then "
                "regenerate sbom.cdx.json and upload a new version."
            )
        return f"Remove {component.name} from the extension, then regenerate sbom.cdx.json and upload a new version."


def _capped(findings: list[Finding]) -> list[Finding]:
    """At most MAX_FINDINGS_PER_RULE per rule id, plus one finding that counts the rest."""
    counts: Counter[str] = Counter()
    kept, dropped = [], Counter()
    severity = {}
    for finding in findings:
        counts[finding.rule] += 1
        if counts[finding.rule] <= MAX_FINDINGS_PER_RULE:
            kept.append(finding)
        else:
            dropped[finding.rule] += 1
            severity[finding.rule] = finding.severity
    for rule, n in dropped.items():
        kept.append(
            Finding(
                rule,
                severity[rule],
                f"{n} more component{'s' if n > 1 else ''} have this finding; only the first "
                f"{MAX_FINDINGS_PER_RULE} are listed.",
                location=f"{SBOM_PATH}: components",
                hint="Fix the components listed above the same way, then upload again to see the rest.",
            )
        )
    return kept


def evaluate(components: Sequence[SbomComponent], rules: Iterable[PolicyRule]) -> PolicyReport:
    """Judge each component against the rules (semantics in the module docstring)."""
    evaluation = _Evaluation(rules)
    outcomes = []
    for index, component in enumerate(components):
        subject = _Subject(index, component, _component_tree(component.licenses), _version(component.version))
        outcomes.append(evaluation.evaluate(subject))
    counts = Counter("passed" if o == "allowed_by_name" else o for o in outcomes)
    measurements = {
        "components": len(components),
        **{key: counts.get(key, 0) for key in ("passed", "denied", "license_not_allowed", "license_unknown")},
        "allowed_by_name": outcomes.count("allowed_by_name"),
        "rules": len(evaluation.rules),
    }
    return PolicyReport(_capped(evaluation.findings), outcomes, measurements)

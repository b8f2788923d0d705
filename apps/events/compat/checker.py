"""One ``is_subschema`` run: recursion with its budget, depth limit and cycle handling, and the order in which
references, the producer's alternatives and the keywords are compared."""

from __future__ import annotations

from apps.events.compat.combinators import _Combinators
from apps.events.compat.keywords import _Keywords
from apps.events.compat.messages import Incompatibility, _esc, _label, _Malformed, _show, _unprovable
from apps.events.compat.reading import (
    _branches,
    _canon,
    _constraining,
    _has_ref,
    _merge,
    _normalized,
    _same,
    _writer_values,
)
from apps.events.compat.refs import _RefResolution
from apps.events.compat.vocabulary import MAX_CHECKS, MAX_DEPTH, R, W


class _Checker(_RefResolution, _Combinators, _Keywords):
    """One is_subschema run: the documents each side's $refs resolve against, and the pairs being compared."""

    def __init__(self, writer_root, reader_root, same_roots: bool | None = None):
        self.roots = {W: writer_root, R: reader_root}
        if same_roots is None:
            same_roots = writer_root is reader_root or _same(writer_root, reader_root)
        self.same_roots = same_roots
        self.active: dict[tuple[str, str], str] = {}  # pairs under comparison -> the field they were met at
        self.validators: dict = {}
        self.budget = MAX_CHECKS  # alternatives multiply, and a schema may be hostile

    def check(self, w, r, path: str, field: str, depth: int) -> list[Incompatibility]:
        if r is True or w is False or (w == r and _same(w, r) and (self.same_roots or not _has_ref(w))):
            return []  # accepts all, produces nothing, or identical
        for side, schema in ((W, w), (R, r)):
            if not isinstance(schema, dict | bool):
                why = f"The {side} schema for {_label(field, False)} is {_show(schema)}, not an object or a boolean."
                return [Incompatibility(path, "invalid_schema", why)]
        if r is False:
            why = f"{_label(field)} is produced but the reader's schema is false, which accepts nothing."
            return [Incompatibility(path, "rejects_everything", why)]
        if not _constraining(r):
            return []
        self.budget -= 1
        if depth > MAX_DEPTH or self.budget < 0:
            deep = depth > MAX_DEPTH
            reason = f"the schemas are {'nested too deep' if deep else 'too complex'} to compare"
            return [_unprovable(path, "invalid_schema" if deep else "too_complex", field, reason)]
        w = {} if w is True else w
        key = (_canon(w), _canon(r))
        if key in self.active:  # a recursive schema came back to a pair under comparison
            if self.active[key] != field:
                return []  # one level deeper in the instance: assume compatible (coinduction)
            return [_unprovable(path, "unresolvable_ref", field, "a $ref cycle never reaches a value")]
        self.active[key] = field
        try:
            found = self._dispatch(w, r, path, field, depth + 1)
            return list({(p.path, p.rule, p.message): p for p in found}.values())  # without duplicates, in order
        except _Malformed as exc:
            why = f"Cannot check {_label(field, False)}: {exc}."
            return [Incompatibility(f"{path}/{_esc(exc.keyword)}", "invalid_schema", why)]
        finally:
            del self.active[key]

    def _dispatch(self, w: dict, r: dict, path: str, field: str, depth: int) -> list[Incompatibility]:
        """Unfold references and the producer's alternatives first, then compare keyword by keyword."""
        if "$ref" in w:
            target = self._follow(w, path)
            return [target] if isinstance(target, Incompatibility) else self.check(target, r, path, field, depth)
        if "$ref" in r:  # the reader's siblings constrain in addition to its target
            target, where = self._resolve(R, r["$ref"], path)
            if isinstance(target, Incompatibility):
                return [target]
            rest = {k: v for k, v in r.items() if k != "$ref"}
            return self.check(w, target, where, field, depth) + self.check(w, rest, path, field, depth)
        for keyword in ("anyOf", "oneOf"):
            if keyword in w:  # every alternative, narrowed by the keywords beside it, must be accepted
                base = {k: v for k, v in w.items() if k != keyword}
                return [p for b in _branches(w, keyword, W) for p in self.check(_merge(base, b), r, path, field, depth)]
        if "allOf" in w:
            merged = self._merge_all(w, path)
            return [merged] if isinstance(merged, Incompatibility) else self.check(merged, r, path, field, depth)
        if "not" in w and (w["not"] is True or (isinstance(w["not"], dict) and not _constraining(w["not"]))):
            return []  # "not: {}" produces nothing
        values = _writer_values(w) if "enum" in w or "const" in w or "enum" in r or "const" in r else None
        if values is not None:
            return self._values(w, r, path, field, values)
        w, r = _normalized(w), _normalized(r)
        return self._combinators(w, r, path, field, depth) + self._typed(w, r, path, field, depth)

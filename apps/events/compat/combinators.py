"""The reader's ``allOf``, ``anyOf``, ``oneOf`` and ``not``."""

from __future__ import annotations

from apps.events.compat.messages import Incompatibility, _broken, _Malformed, _plain, _show, _unprovable
from apps.events.compat.reading import _branches, _has_ref, _overlap, _same, _types
from apps.events.compat.vocabulary import R, W


class _Combinators:
    """Mixed into ``_Checker``: uses its ``check``, ``_resolve`` and ``same_roots``."""

    def _combinators(self, w: dict, r: dict, path: str, field: str, depth: int) -> list[Incompatibility]:
        problems = []
        for i, branch in enumerate(_branches(r, "allOf", R)):
            problems += self.check(w, branch, f"{path}/allOf/{i}", field, depth)
        for keyword in ("anyOf", "oneOf"):
            if keyword in r:
                problems += self._some_branch(w, _branches(r, keyword, R), f"{path}/{keyword}", field, depth)
        if "not" in r:
            problems += self._not(w, r["not"], path, field)
        return problems

    def _some_branch(self, w: dict, branches: list, path: str, field: str, depth: int) -> list[Incompatibility]:
        """Each producer type must fit one reader branch; oneOf's exclusivity is not proven."""
        types, problems = _types(w, W), []
        plain = {k: v for k, v in w.items() if k != "nullable"}
        for variant in [w] if types is None or len(types) == 1 else [{**plain, "type": t} for t in sorted(types)]:
            results = [self.check(variant, b, f"{path}/{i}", field, depth) for i, b in enumerate(branches)]
            if all(results):
                mine = _types(variant, W)
                near = [i for i, b in enumerate(branches) if _overlap(mine, self._peek(b))]
                if len(near) == 1:  # the one branch of the right type: its problems are the precise report
                    problems += results[near[0]]
                else:
                    what = f"may be {_plain(mine, articles=True)}"
                    why = f"has no {path.rsplit('/', 1)[-1]} branch accepting all of it"
                    problems.append(_broken(path, "no_matching_branch", field, what, why))
        return problems

    def _peek(self, schema) -> frozenset[str] | None:
        """The types a reader branch allows, to pick the branch a report should describe."""
        if schema is False:
            return frozenset()
        try:
            if isinstance(schema, dict) and "$ref" in schema:
                schema = self._resolve(R, schema["$ref"], "")[0]
            return _types(schema, R) if isinstance(schema, dict) else None
        except _Malformed:
            return None

    def _not(self, w: dict, excluded, path: str, field: str) -> list[Incompatibility]:
        """Proved only when the producer excludes the same schema, or its types cannot meet the excluded ones."""
        if "not" in w and _same(w["not"], excluded) and (self.same_roots or not _has_ref(excluded)):
            return []
        if not _overlap(_types(w, W), self._peek(excluded)):
            return []
        return [_unprovable(f"{path}/not", "unsupported_keyword", field, f"the reader excludes {_show(excluded)}")]

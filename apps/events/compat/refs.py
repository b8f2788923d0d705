"""Following ``$ref``: local JSON Pointers resolved against each side's root, alias chains and cycles, and a
producer's ``$ref`` and ``allOf`` unfolded into one schema. (Recursion through a reference, the same pair of
schemas met again, is handled by ``_Checker.check``.)"""

from __future__ import annotations

from urllib.parse import unquote

from apps.events.compat.messages import Incompatibility, _Malformed
from apps.events.compat.reading import _branches, _canon, _merge
from apps.events.compat.vocabulary import ANNOTATIONS, W


class _RefResolution:
    """Mixed into ``_Checker``: uses its ``roots``."""

    def _resolve(self, side: str, ref, path: str):
        """(target, its JSON Pointer) for a local reference, or (Incompatibility, "") when it cannot be followed."""
        seen: list[str] = []
        while True:
            if not isinstance(ref, str):
                raise _Malformed("$ref", f"the {side} '$ref' is not a string")
            if ref in seen:
                return Incompatibility(f"{path}/$ref", "unresolvable_ref", f"The {side} $ref '{ref}' is a cycle."), ""
            seen.append(ref)
            if ref != "#" and not ref.startswith("#/"):
                why = f"Cannot prove compatibility: the {side} $ref '{ref}' is not a local JSON Pointer."
                return Incompatibility(f"{path}/$ref", "unsupported_ref", why), ""
            node, pointer = self.roots[side], unquote(ref[1:])
            for token in (t.replace("~1", "/").replace("~0", "~") for t in pointer.split("/")[1:]):
                if isinstance(node, dict) and token in node:
                    node = node[token]
                elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
                    node = node[int(token)]
                else:
                    why = f"The {side} $ref '{ref}' points to nothing."
                    return Incompatibility(f"{path}/$ref", "unresolvable_ref", why), ""
            if not (isinstance(node, dict) and node.keys() - ANNOTATIONS == {"$ref"}):
                return node, pointer
            ref = node["$ref"]  # a bare alias: keep following

    def _follow(self, w: dict, path: str):
        """A producer's $ref target narrowed by its siblings, or the Incompatibility saying why it cannot be read."""
        target, _ = self._resolve(W, w["$ref"], path)
        rest = {k: v for k, v in w.items() if k != "$ref" and k not in ANNOTATIONS}
        return _merge(rest, target) if rest and not isinstance(target, Incompatibility) else target

    def _merge_all(self, w: dict, path: str):
        """A producer's allOf as one schema: the branches (references followed) merged with the siblings."""
        merged = {k: v for k, v in w.items() if k != "allOf"}
        for branch in _branches(w, "allOf", W):
            seen = set()
            while isinstance(branch, dict) and "$ref" in branch and _canon(branch) not in seen:
                seen.add(_canon(branch))
                branch = self._follow(branch, path)
                if isinstance(branch, Incompatibility):
                    return branch
            if isinstance(branch, dict) and "$ref" in branch:  # a cycle: dropping it only widens
                branch = {k: v for k, v in branch.items() if k != "$ref"}
            merged = _merge(merged, branch)
            if not isinstance(merged, dict):
                break
        return merged

"""Keyword by keyword: enum/const values, types, numbers, strings, arrays, objects, and keywords not modelled."""

from __future__ import annotations

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from referencing import Registry

from apps.events.compat.messages import Incompatibility, _broken, _child, _esc, _plain, _show, _unprovable
from apps.events.compat.reading import (
    _accepts,
    _bound,
    _count,
    _get,
    _has_ref,
    _is_multiple,
    _items,
    _matching,
    _number,
    _overlap,
    _same,
    _tighter,
    _types,
)
from apps.events.compat.vocabulary import (
    ANNOTATIONS,
    COUNT_RULES,
    HANDLED,
    NEVER_PROVABLE,
    OBJECT_KEYWORDS,
    TYPES,
    R,
    W,
)


class _Keywords:
    """Mixed into ``_Checker``: uses its ``check``, ``roots``, ``same_roots`` and ``validators``."""

    def _validate(self, side: str, schema, value) -> tuple[bool | None, str]:
        """(valid?, reason) per jsonschema, that side's root resolving $refs; None when it cannot be evaluated."""
        try:
            if side not in self.validators:
                checker = Draft202012Validator.FORMAT_CHECKER
                validator = Draft202012Validator(self.roots[side], registry=Registry(), format_checker=checker)
                self.validators[side] = validator
            error = best_match(self.validators[side].evolve(schema=schema).iter_errors(value))
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # malformed, unresolvable, endless $ref loop (a Rust panic is no Exception)
            return None, type(exc).__name__
        return (True, "") if error is None else (False, error.message)

    def _values(self, w: dict, r: dict, path: str, field: str, values: list) -> list[Incompatibility]:
        """A finite producer: each value its own schema accepts must validate under the reader."""
        problems, keyword = [], "enum" if "enum" in r else "const"
        allowed = r.get("enum") if isinstance(r.get("enum"), list) else [r["const"]] if "const" in r else None
        for value in values:
            if self._validate(W, w, value)[0] is False:
                continue  # the producer's own schema rejects it, so it is never sent
            ok, reason = self._validate(R, r, value)
            sent = f"may be {_show(value)}"
            if ok is None:
                why = f"the reader's schema cannot be evaluated for {_show(value)} ({reason})"
                problems.append(_unprovable(path, "invalid_schema", field, why))
            elif not ok and allowed is not None and not any(_same(value, a) for a in allowed):
                why = f"does not list it in its {keyword}"
                problems.append(_broken(f"{path}/{keyword}", "enum_value_removed", field, sent, why))
            elif not ok:
                problems.append(_broken(path, "enum_value_not_accepted", field, sent, f"rejects it ({reason})"))
        return problems

    def _typed(self, w: dict, r: dict, path: str, field: str, depth: int) -> list[Incompatibility]:
        """Types first, then the keywords of each type the producer may send and the reader accepts."""
        wt, rt = _types(w, W), _types(r, R)
        problems = []
        if rt is not None and any(not _accepts(rt, t) for t in wt or TYPES):
            rule = "type_narrowed" if wt is None or _overlap(wt, rt) else "type_changed"
            what = ("may be " if rule == "type_narrowed" else "is ") + _plain(wt, articles=True)
            problems.append(_broken(f"{path}/type", rule, field, what, f"accepts only {_plain(rt)}"))
        live = frozenset(t for t in wt or TYPES if _accepts(rt, t))
        if ("enum" in r or "const" in r) and live:
            keyword = "enum" if "enum" in r else "const"
            what = "may be any value" if wt is None else f"may be any {_plain(live)}"
            why = f"accepts only {_show(r[keyword])}"
            problems.append(_broken(f"{path}/{keyword}", "enum_added", field, what, why))
        if live & {"number", "integer"}:
            problems += self._numbers(w, r, path, field, wt == {"integer"})
        if "string" in live:
            problems += self._counts(w, r, path, field, ("minLength", "maxLength"), "characters")
            for keyword in ("pattern", "format"):
                if keyword in r and not _same(w.get(keyword), r[keyword]):
                    had = f"has {keyword} {_show(w[keyword])}" if keyword in w else f"has no {keyword}"
                    why = f"requires {keyword} {_show(r[keyword])}"
                    problems.append(_broken(f"{path}/{keyword}", f"{keyword}_changed", field, had, why))
        if "array" in live:
            problems += self._arrays(w, r, path, field, depth)
        if "object" in live:
            problems += self._objects(w, r, path, field, depth)
        return problems + self._unknown(w, r, path, field)

    def _numbers(self, w: dict, r: dict, path: str, field: str, integers: bool) -> list[Incompatibility]:
        problems = []
        for lower, noun, rule in ((True, "minimum", "minimum_raised"), (False, "maximum", "maximum_lowered")):
            wb, rb = _bound(w, lower, integers, W), _bound(r, lower, integers, R)
            if _tighter(rb, wb, lower):
                op = {(True, False): ">=", (True, True): ">", (False, False): "<=", (False, True): "<"}
                had = f"has no {noun}" if wb is None else f"has {noun} {op[lower, wb[1]]} {_show(wb[0])}"
                why = f"requires {op[lower, rb[1]]} {_show(rb[0])}"
                problems.append(_broken(f"{path}/{rb[2]}", rule, field, had, why))
        divisor = _number(r, "multipleOf", R)
        if divisor is not None:
            mine = _number(w, "multipleOf", W) or (1 if integers else None)
            if mine is None or not _is_multiple(mine, divisor):
                had = "has no multipleOf" if mine is None else f"has multipleOf {_show(mine)}"
                why = f"requires multiples of {_show(divisor)}"
                problems.append(_broken(f"{path}/multipleOf", "multiple_of_changed", field, had, why))
        return problems

    def _counts(self, w: dict, r: dict, path: str, field: str, keywords: tuple, unit: str) -> list[Incompatibility]:
        (low, high), problems = keywords, []
        (w_low, r_low), (w_high, r_high) = ((_count(w, k, W), _count(r, k, R)) for k in keywords)
        if r_low is not None and r_low > (w_low or 0):
            had = f"may have as few as {w_low or 0} {unit}"
            problems.append(_broken(f"{path}/{low}", COUNT_RULES[low], field, had, f"requires at least {r_low}"))
        if r_high is not None and (w_high is None or r_high < w_high):
            had = f"may have {'any number of' if w_high is None else f'up to {w_high}'} {unit}"
            problems.append(_broken(f"{path}/{high}", COUNT_RULES[high], field, had, f"allows at most {r_high}"))
        return problems

    def _arrays(self, w: dict, r: dict, path: str, field: str, depth: int) -> list[Incompatibility]:
        problems = self._counts(w, r, path, field, ("minItems", "maxItems"), "items")
        if r.get("uniqueItems") is True and w.get("uniqueItems") is not True:
            why = "requires unique items"
            problems.append(_broken(f"{path}/uniqueItems", "unique_items_added", field, "may repeat items", why))
        (w_prefix, w_rest, _), (r_prefix, r_rest, r_keyword) = _items(w, W), _items(r, R)
        limit, n = _count(w, "maxItems", W), max(len(w_prefix), len(r_prefix))
        for i in range(n + 1):  # position n stands for every position after both prefixes
            schema = w_prefix[i] if i < len(w_prefix) else w_rest
            if (limit is not None and i >= limit) or schema is False:
                break  # the producer's arrays never reach this position
            where, reader = (f"{path}/{r_keyword}/{i}", r_prefix[i]) if i < len(r_prefix) else (f"{path}/items", r_rest)
            problems += self.check(schema, reader, where, f"{field}[{i}]" if i < n else f"{field}[]", depth)
        return problems

    def _objects(self, w: dict, r: dict, path: str, field: str, depth: int) -> list[Incompatibility]:
        """The producer sends its declared properties, plus other names where its additionalProperties is a schema
        or its patternProperties allow; the reader must accept each of them and require nothing more."""
        w_props, w_pats, w_req = (_get(w, k, t, W, t()) for k, t in OBJECT_KEYWORDS)
        r_props, r_pats, r_req = (_get(r, k, t, R, t()) for k, t in OBJECT_KEYWORDS)
        extra = w.get("additionalProperties") if isinstance(w.get("additionalProperties"), dict) else None
        reader_extra, problems = r.get("additionalProperties", True), []
        same_patterns = not r_pats or (_same(w_pats, r_pats) and (self.same_roots or not _has_ref(r_pats)))
        if not same_patterns:
            why = "the reader's patternProperties changed"
            problems.append(_unprovable(f"{path}/patternProperties", "unsupported_keyword", field, why))
        for name, schema in w_props.items():
            where, child = f"{path}/properties/{_esc(name)}", _child(field, name)
            if schema is False or (name not in r_props and r_pats and _matching(r_pats, name, R) is not None):
                continue  # never sent, or under patterns both sides share (or that were reported above)
            if name in r_props:
                problems += self.check(schema, r_props[name], where, child, depth)
            elif reader_extra is False:
                why = "does not allow it (additionalProperties is false)"
                problems.append(_broken(where, "property_not_accepted", child, "is declared", why))
            else:
                problems += self.check(schema, reader_extra, f"{path}/additionalProperties", child, depth)
        for name, reader in r_props.items():
            schema = None if name in w_props else _matching(w_pats, name, W)
            if name not in w_props and (schema := extra if schema is None else schema) is not None:
                problems += self.check(schema, reader, f"{path}/properties/{_esc(name)}", _child(field, name), depth)
        for schema in [extra, *([] if r_pats else w_pats.values())] if same_patterns else []:
            if schema is None or schema is False:
                continue
            if reader_extra is False:
                what, where = "may carry properties it does not declare", f"{path}/additionalProperties"
                problems.append(_broken(where, "property_not_accepted", field, what, "allows none"))
            else:
                problems += self.check(schema, reader_extra, f"{path}/additionalProperties", _child(field, "*"), depth)
        for name in r_req:
            if name not in w_req:
                why = f"The reader requires '{_child(field, name)}' but the producer's schema does not, so it may be "
                problems.append(Incompatibility(f"{path}/required", "required_added", why + "missing."))
        return problems + self._counts(w, r, path, field, ("minProperties", "maxProperties"), "properties")

    def _unknown(self, w: dict, r: dict, path: str, field: str) -> list[Incompatibility]:
        """Keywords not modelled here prove nothing unless both sides carry the same self-contained value."""
        problems = []
        for keyword, value in r.items():
            if keyword in HANDLED or keyword in ANNOTATIONS or str(keyword).startswith("x-"):
                continue
            same = keyword in w and _same(w[keyword], value) and (self.same_roots or not _has_ref(value))
            if not same or keyword in NEVER_PROVABLE:
                had = _show(w[keyword]) if keyword in w else "absent"
                reason = f"keyword '{keyword}' is {_show(value)} in the reader and {had} in the producer's schema"
                problems.append(_unprovable(f"{path}/{_esc(keyword)}", "unsupported_keyword", field, reason))
        return problems

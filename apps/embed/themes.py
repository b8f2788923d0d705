"""Theme packs in the W3C Design Tokens (DTCG) format, and the built-in light and dark packs.

A pack is a JSON document of nested groups; a token is an object with ``$value`` and a ``$type``
(its own, or inherited from an enclosing group). A value may be an alias ``{group.token}`` to
another token, resolved here (cycles and dangling references refused). Only the types a widget
can apply safely as a CSS custom property are accepted — color, dimension, fontFamily,
fontWeight, duration, number — and every value is normalised into a string that cannot be
anything but a value of that type (``theme`` messages never carry raw CSS).

A token's CSS custom property is ``--plaza-`` followed by its path joined with ``-``
(``color.bg`` → ``--plaza-color-bg``): the names ``static/css/tokens.css`` uses for the portal.
"""

from __future__ import annotations

import json
import math
import re

from apps.core.api import find_unstorable
from apps.core.errors import ValidationFailed

MAX_DOCUMENT_BYTES = 64 * 1024
MAX_TOKENS = 400
MAX_DEPTH = 8
MAX_ALIAS_HOPS = 20
TYPES = ("color", "dimension", "fontFamily", "fontWeight", "duration", "number")
CSS_NAME = re.compile(r"^--plaza-[a-z0-9]+(?:-[a-z0-9]+)*$")
_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,40}$")
_ALIAS = re.compile(r"^\{([^{}]{1,200})\}$")
_HEX = re.compile(r"^#(?:[0-9a-fA-F]{3,4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$")
_DIMENSION = re.compile(r"^(-?\d{1,6}(?:\.\d{1,4})?)(px|rem|em|%)$")
_DURATION = re.compile(r"^(\d{1,6}(?:\.\d{1,4})?)(ms|s)$")
_FONT_NAME = re.compile(r"^-?[A-Za-z0-9][A-Za-z0-9 _-]{0,60}$")
_GENERIC_FAMILIES = frozenset(
    {"serif", "sans-serif", "monospace", "cursive", "fantasy", "system-ui", "ui-serif", "ui-sans-serif",
     "ui-monospace", "ui-rounded", "math", "emoji", "fangsong", "-apple-system", "BlinkMacSystemFont"}
)  # fmt: skip
_WEIGHTS = {
    "thin": 100, "hairline": 100, "extra-light": 200, "ultra-light": 200, "light": 300, "normal": 400,
    "regular": 400, "book": 400, "medium": 500, "semi-bold": 600, "demi-bold": 600, "bold": 700,
    "extra-bold": 800, "ultra-bold": 800, "black": 900, "heavy": 900, "extra-black": 950, "ultra-black": 950,
}  # fmt: skip
# Patterns a normalised value of each type matches (the SDK re-checks with the same ones).
VALUE_PATTERNS = {
    "color": r"^#[0-9a-f]{6}(?:[0-9a-f]{2})?$",
    "dimension": r"^-?\d+(?:\.\d+)?(?:px|rem|em|%)$",
    "duration": r"^\d+(?:\.\d+)?(?:ms|s)$",
    "number": r"^-?\d+(?:\.\d+)?$",
    "fontWeight": r"^(?:[1-9]\d{0,2}|1000)$",
    "fontFamily": r'^[A-Za-z0-9 ,"_-]+$',
}


class _Problems:
    def __init__(self):
        self.items: list[dict] = []

    def add(self, path: str, message: str) -> None:
        if len(self.items) < 50:
            self.items.append({"path": path or "$", "param": path or "$", "message": message})


def _number_text(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _finite_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _color(value) -> str | None:
    if isinstance(value, str) and _HEX.fullmatch(value):
        digits = value[1:].lower()
        if len(digits) in (3, 4):
            digits = "".join(c * 2 for c in digits)
        return "#" + (digits[6:] == "ff" and digits[:6] or digits)
    if isinstance(value, dict):
        alpha = value.get("alpha", 1)
        if not _finite_number(alpha) or not 0 <= alpha <= 1:
            return None
        suffix = "" if alpha == 1 else f"{round(alpha * 255):02x}"
        hex_value = value.get("hex")
        if isinstance(hex_value, str) and re.fullmatch(r"#[0-9a-fA-F]{6}", hex_value):
            return hex_value.lower() + suffix
        components = value.get("components")
        if (
            value.get("colorSpace") == "srgb"
            and isinstance(components, list)
            and len(components) == 3
            and all(_finite_number(c) and 0 <= c <= 1 for c in components)
        ):
            return "#" + "".join(f"{round(c * 255):02x}" for c in components) + suffix
    return None


def _with_unit(value, pattern: re.Pattern, units: tuple[str, ...]) -> str | None:
    if isinstance(value, str):
        match = pattern.fullmatch(value.strip())
        return f"{_number_text(float(match.group(1)))}{match.group(2)}" if match else None
    if isinstance(value, dict) and set(value) <= {"value", "unit"}:
        number, unit = value.get("value"), value.get("unit")
        if _finite_number(number) and unit in units and abs(number) < 1e6:
            return f"{_number_text(number)}{unit}"
    return None


def _font_family(value) -> str | None:
    names = [value] if isinstance(value, str) else value if isinstance(value, list) else None
    if not names or len(names) > 10 or not all(isinstance(n, str) and _FONT_NAME.fullmatch(n.strip()) for n in names):
        return None
    out = []
    for name in (n.strip() for n in names):
        out.append(name if name in _GENERIC_FAMILIES or re.fullmatch(r"[A-Za-z-]+", name) else f'"{name}"')
    return ", ".join(out)


def _font_weight(value) -> str | None:
    if _finite_number(value) and float(value).is_integer() and 1 <= value <= 1000:
        return str(int(value))
    if isinstance(value, str) and value.strip().lower() in _WEIGHTS:
        return str(_WEIGHTS[value.strip().lower()])
    return None


def normalise_value(token_type: str, value) -> str | None:
    """The value as a string of its type, or None when it is not a valid value of that type."""
    if token_type == "color":
        return _color(value)
    if token_type == "dimension":
        return _with_unit(value, _DIMENSION, ("px", "rem", "em", "%"))
    if token_type == "duration":
        return _with_unit(value, _DURATION, ("ms", "s"))
    if token_type == "number":
        return _number_text(value) if _finite_number(value) and abs(value) < 1e9 else None
    if token_type == "fontWeight":
        return _font_weight(value)
    if token_type == "fontFamily":
        return _font_family(value)
    return None


def css_variable(path: tuple[str, ...]) -> str:
    return "--plaza-" + "-".join(segment.lower().replace("_", "-") for segment in path)


def _collect(node: dict, path: tuple[str, ...], inherited: str | None, tokens: dict, problems: _Problems) -> None:
    if len(path) > MAX_DEPTH:
        problems.add(".".join(path), f"Groups nest at most {MAX_DEPTH} deep.")
        return
    group_type = node.get("$type", inherited)
    root = node.get("$root")
    if path and isinstance(root, dict) and "$value" in root:  # DTCG 2025: the group's own token
        tokens[path] = (root.get("$type", group_type), root["$value"])
    for key, child in node.items():
        if key.startswith("$"):
            continue
        where = ".".join((*path, key))
        if not isinstance(key, str) or not _SEGMENT.fullmatch(key):
            problems.add(where, "Token and group names are letters, digits, '-' and '_' (up to 41 characters).")
            continue
        if not isinstance(child, dict):
            problems.add(
                where,
                "Each member is a group (an object) or a token (an object with $value); "
                "a group's own token is its $root.",
            )
            continue
        if "$value" in child:
            if len(tokens) >= MAX_TOKENS:
                problems.add(where, f"A theme pack holds at most {MAX_TOKENS} tokens.")
                return
            tokens[(*path, key)] = (child.get("$type", group_type), child["$value"])
        else:
            _collect(child, (*path, key), group_type, tokens, problems)


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def load_document(document) -> dict:
    """The DTCG document as a dict that can be stored as uploaded: JSON text (str or bytes) or an
    already parsed object, at most MAX_DOCUMENT_BYTES, with no NaN/Infinity and no text the
    database cannot store (NUL, lone surrogates). Raises ValidationFailed (``theme_invalid``)."""
    if isinstance(document, (str, bytes)):
        raw = document.encode("utf-8", "surrogatepass") if isinstance(document, str) else document
        if len(raw) > MAX_DOCUMENT_BYTES:
            raise ValidationFailed(f"A theme pack is at most {MAX_DOCUMENT_BYTES} bytes.", code="theme_invalid")
        try:
            document = json.loads(raw, parse_constant=_refuse_constant)
        except (ValueError, RecursionError):
            raise ValidationFailed("The theme pack is not valid JSON.", code="theme_invalid") from None
    if not isinstance(document, dict):
        raise ValidationFailed("A theme pack is a JSON object of token groups.", code="theme_invalid")
    try:  # an already parsed document (the API's) has the same limits: it is stored as uploaded
        size = len(json.dumps(document, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode())
    except (ValueError, TypeError, RecursionError, UnicodeEncodeError):
        raise ValidationFailed("The theme pack is not valid JSON (no NaN or Infinity).", code="theme_invalid") from None
    if size > MAX_DOCUMENT_BYTES:
        raise ValidationFailed(f"A theme pack is at most {MAX_DOCUMENT_BYTES} bytes.", code="theme_invalid")
    if find_unstorable(document) is not None:
        raise ValidationFailed(
            "The theme pack must not contain NUL characters or lone surrogates.", code="theme_invalid"
        )
    return document


def parse_theme(document) -> dict[str, dict]:
    """Validate a DTCG document and return ``{css variable: {"type", "value"}}`` sorted by name.

    Raises ValidationFailed (``theme_invalid``) with every problem in ``details``."""
    document = load_document(document)
    problems = _Problems()
    tokens: dict[tuple[str, ...], tuple] = {}
    _collect(document, (), None, tokens, problems)
    by_name = {".".join(path): path for path in tokens}
    resolved: dict[str, dict] = {}
    variables: dict[str, str] = {}

    def resolve(path: tuple[str, ...], chain: tuple[str, ...]) -> tuple[str | None, object]:
        declared, value = tokens[path]
        if isinstance(value, str) and (match := _ALIAS.fullmatch(value.strip())):
            target = match.group(1).strip()
            if target in chain or len(chain) > MAX_ALIAS_HOPS:
                raise _Cycle(" → ".join((*chain, target)))
            if target not in by_name:
                raise _Dangling(target)
            target_type, target_value = resolve(by_name[target], (*chain, target))
            if declared and target_type and declared != target_type:
                raise _Mismatch(f"it is a {declared} but {target} is a {target_type}")
            return declared or target_type, target_value
        return declared, value

    for path in tokens:
        name = ".".join(path)
        try:
            token_type, value = resolve(path, (name,))
        except _Cycle as exc:
            problems.add(name, f"The alias forms a cycle: {exc}.")
            continue
        except _Dangling as exc:
            problems.add(name, f"The alias {{{exc}}} names no token in this pack.")
            continue
        except _Mismatch as exc:
            problems.add(name, f"The alias has the wrong type: {exc}.")
            continue
        if token_type is None:
            problems.add(name, "The token has no $type (on itself or an enclosing group).")
            continue
        if token_type not in TYPES:
            problems.add(name, f"The type {str(token_type)[:40]!r} is not supported; use one of {', '.join(TYPES)}.")
            continue
        normalised = normalise_value(token_type, value)
        if normalised is None:
            problems.add(name, f"{json.dumps(value)[:80]} is not a valid {token_type}.")
            continue
        variable = css_variable(path)
        if not CSS_NAME.fullmatch(variable):
            problems.add(name, f"The name does not make a valid CSS variable ({variable[:60]}).")
            continue
        if variable in variables:
            problems.add(name, f"It makes the same CSS variable as {variables[variable]} ({variable}).")
            continue
        variables[variable] = name
        resolved[variable] = {"type": token_type, "value": normalised}
    if not tokens and not problems.items:
        problems.add("$", "The theme pack holds no tokens.")
    if problems.items:
        first = problems.items[0]
        raise ValidationFailed(
            f"The theme pack is invalid: {first['path']}: {first['message']}"
            + (f" ({len(problems.items) - 1} more problem(s))" if len(problems.items) > 1 else ""),
            code="theme_invalid",
            param=first["path"],
            details=problems.items,
        )
    return dict(sorted(resolved.items()))


class _Cycle(Exception):
    pass


class _Dangling(Exception):
    pass


class _Mismatch(Exception):
    pass


def css_declarations(resolved: dict[str, dict]) -> str:
    """``--plaza-x: value;`` lines for a stylesheet (values were validated by ``parse_theme``)."""
    return "\n".join(f"  {name}: {token['value']};" for name, token in resolved.items())


def _palette(**colours: str) -> dict:
    return {name.replace("_", "-"): {"$value": value} for name, value in colours.items()}


_COMMON = {
    "font": {
        "sans": {
            "$type": "fontFamily",
            "$value": ["system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica Neue", "Arial", "sans-serif"],
        },
        "mono": {"$type": "fontFamily", "$value": ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"]},
        "size": {
            "$type": "dimension",
            "$root": {"$value": {"value": 1, "unit": "rem"}},
            "sm": {"$type": "dimension", "$value": {"value": 0.875, "unit": "rem"}},
            "lg": {"$type": "dimension", "$value": {"value": 1.25, "unit": "rem"}},
        },
        "weight": {"$type": "fontWeight", "$root": {"$value": 400}, "bold": {"$type": "fontWeight", "$value": "bold"}},
    },
    "line-height": {"$type": "number", "$value": 1.5},
    "space": {
        "$type": "dimension",
        **{
            str(k): {"$value": {"value": v, "unit": "rem"}}
            for k, v in ((1, 0.25), (2, 0.5), (3, 0.75), (4, 1), (6, 1.5), (8, 2))
        },
    },
    "radius": {
        "$type": "dimension",
        "$root": {"$value": {"value": 0.5, "unit": "rem"}},
        "sm": {"$type": "dimension", "$value": "0.25rem"},
    },
    "motion": {"$type": "duration", "fast": {"$value": {"value": 120, "unit": "ms"}}, "slow": {"$value": "300ms"}},
}


def builtin_documents() -> dict[str, tuple[str, dict]]:
    """name -> (scheme, DTCG document) of the built-in packs, the values of static/css/tokens.css."""
    light = {
        "color": {
            "$type": "color",
            **_palette(
                bg="#f7f7f9",
                surface="#ffffff",
                text="#1b1d23",
                muted="#51576a",
                border="#d5d8e0",
                primary="#3b3bb3",
                primary_hover="#2d2d8f",
                on_primary="#ffffff",
                danger="#b3261e",
                danger_bg="#fdecea",
                success="#1e6b35",
                success_bg="#e6f4ea",
                warning_bg="#fff4d6",
                focus="#f59e0b",
            ),  # fmt: skip
            "accent": {"$value": "{color.primary}"},
        },
        **_COMMON,
    }
    dark = {
        "color": {
            "$type": "color",
            **_palette(
                bg="#14151a",
                surface="#1d1f26",
                text="#eceef4",
                muted="#aeb4c5",
                border="#353947",
                primary="#8f8ff5",
                primary_hover="#a9a9ff",
                on_primary="#10101e",
                danger="#ff8a80",
                danger_bg="#3b1f1d",
                success="#8fd9a3",
                success_bg="#1c3323",
                warning_bg="#3a3015",
                focus="#f59e0b",
            ),  # fmt: skip
            "accent": {"$value": "{color.primary}"},
        },
        **_COMMON,
    }
    return {"Plaza light": ("light", light), "Plaza dark": ("dark", dark)}

"""Opaque, type-prefixed, time-ordered resource ids (``org_01J…``).

26 Crockford base32 characters after the prefix: 48 bits of milliseconds then 80 random bits,
so ids sort by creation time, which cursor pagination relies on.
"""

from __future__ import annotations

import re
import secrets
import threading
import time

from django.db import models

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_ID_RE = re.compile(r"^[a-z]{2,5}_[0-9A-HJKMNP-TV-Z]{26}$")


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


_lock = threading.Lock()
_last = [0, 0]  # milliseconds, random part of the newest id made by this process


def new_id(prefix: str) -> str:
    """Ids made by one process are strictly increasing, even within one millisecond (the random
    part is incremented, as in monotonic ULIDs), so "newest first" is exact for them."""
    millis = int(time.time() * 1000) & ((1 << 48) - 1)
    with _lock:
        if millis <= _last[0]:
            millis, rand = _last[0], (_last[1] + 1) & ((1 << 80) - 1)
        else:
            rand = secrets.randbits(79)  # headroom so increments never wrap in practice
        _last[0], _last[1] = millis, rand
    return f"{prefix}_{_encode((millis << 80) | rand, 26)}"


def is_valid_id(value: object, prefix: str | None = None) -> bool:
    if not isinstance(value, str) or not _ID_RE.fullmatch(value):
        return False
    return prefix is None or value.startswith(prefix + "_")


class PrefixedIdField(models.CharField):
    """Primary key holding a prefixed id, generated on first save."""

    def __init__(self, *args, prefix: str = "", **kwargs):
        self.prefix = prefix
        kwargs.setdefault("max_length", 32)
        kwargs.setdefault("primary_key", True)
        kwargs.setdefault("editable", False)
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs["prefix"] = self.prefix
        for key, default in (("max_length", 32), ("primary_key", True), ("editable", False)):
            if kwargs.get(key) == default:
                kwargs.pop(key, None)
        return name, path, args, kwargs

    def pre_save(self, model_instance, add):
        value = getattr(model_instance, self.attname)
        if not value:
            value = new_id(self.prefix)
            setattr(model_instance, self.attname, value)
        return value

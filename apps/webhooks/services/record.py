"""Storing a batch's outcomes: one ``Attempt`` row per attempt, and each message's new state.

Both run in the batch's recording transaction (``delivery._record``), a few statements per batch
whatever its size. Message writes are guarded by the worker's lease token (``services/claim.py``):
a worker whose lease expired mid-send writes nothing, and says so in the count it returns. Its
attempts are still stored (every attempt is, even a late one).

PostgreSQL: attempts go in with ``COPY … FROM STDIN`` (rows formatted by psycopg's C code: a
multi-row ``INSERT`` spent more time building and parsing its SQL text than the server spent
writing), and message changes are one ``UPDATE … FROM unnest(…)`` per set of changed columns, the
per-message values (ids, retry times) passed as arrays, so the statement text stays short.
SQLite: multi-row ``INSERT`` and one ``UPDATE … WHERE id IN (…)`` per identical change.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict

from django.db import connection
from django.db.models import F

from apps.core.ids import new_id
from apps.webhooks.models import Attempt, Message

# (message id, changes, whether an attempt was made): what delivery decided for each message.
Write = tuple[str, dict, bool]

_PER_MESSAGE = "next_attempt_at"  # a retry's time differs per message (jitter): an array on PostgreSQL


def attempts_insert(attempts: list[dict]) -> None:
    """Insert ``Attempt`` rows given as attname → value dicts (ids are assigned here)."""
    if not attempts:
        return
    if connection.vendor == "postgresql":
        _attempts_copy(attempts)
    else:
        _attempts_insert(attempts)


def messages_write(token: str, writes: list[Write]) -> int:
    """Apply each message's changes, release its lease and, when an attempt was made, count it —
    only where the message still carries ``token``. Returns how many messages were written."""
    if not writes:
        return 0
    if connection.vendor == "postgresql":
        return _messages_update_pg(token, writes)
    return _messages_update(token, writes)


# --- PostgreSQL -----------------------------------------------------------------------------------


def _attempts_copy(attempts: list[dict]) -> None:
    fields = list(Attempt._meta.concrete_fields)
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)
    # Only the model's own table and column names go into the text; the rows are data.
    sql = f"COPY {quote(Attempt._meta.db_table)} ({columns}) FROM STDIN"
    names = [f.attname for f in fields]
    json_names = {f.attname for f in fields if f.get_internal_type() == "JSONField"}
    with connection.cursor() as cursor, cursor.copy(sql) as copy:
        for values in attempts:
            row = []
            for name in names:
                if name == "id":
                    row.append(new_id("att"))
                elif name in json_names:
                    row.append(json.dumps(values.get(name, {}), ensure_ascii=False))
                else:
                    row.append(values.get(name))
            copy.write_row(row)


def _messages_update_pg(token: str, writes: list[Write]) -> int:
    # Messages changing the same columns to the same values (retry times aside) share a statement.
    groups: dict[tuple, tuple[list[str], list[dt.datetime]]] = {}
    for pk, changes, attempted in writes:
        shared = tuple(sorted((k, v) for k, v in changes.items() if k != _PER_MESSAGE))
        key = (shared, _PER_MESSAGE in changes, attempted)
        pks, times = groups.setdefault(key, ([], []))
        pks.append(pk)
        if _PER_MESSAGE in changes:
            times.append(changes[_PER_MESSAGE])
    quote = connection.ops.quote_name
    table = quote(Message._meta.db_table)
    written = 0
    with connection.cursor() as cursor:
        for (shared, per_message, attempted), (pks, times) in groups.items():
            sets, params = [], []
            for name, value in shared:
                model_field = Message._meta.get_field(name)
                sets.append(f"{quote(model_field.column)} = %s")
                params.append(model_field.get_db_prep_save(value, connection))
            sets += ["lease_until = NULL", "lease_token = ''"]
            if attempted:
                sets.append("attempts = m.attempts + 1")
            if per_message:
                sets.append(f"{quote(Message._meta.get_field(_PER_MESSAGE).column)} = v.at")
                source = "FROM unnest(%s::varchar[], %s::timestamptz[]) AS v(id, at) WHERE m.id = v.id"
                params += [pks, times, token]
            else:
                source = "WHERE m.id = ANY(%s::varchar[])"
                params += [pks, token]
            # Table and column names are the model's own; every value is a parameter.
            cursor.execute(f"UPDATE {table} AS m SET {', '.join(sets)} {source} AND m.lease_token = %s", params)  # noqa: S608
            written += cursor.rowcount
    return written


# --- SQLite (and any other database) --------------------------------------------------------------


def _attempts_insert(attempts: list[dict]) -> None:
    """Multi-row INSERTs: ``bulk_create`` spent more time compiling SQL per value than the database
    spent writing. Each value is still prepared by its field, except those shared by the whole
    batch, prepared once."""
    fields = list(Attempt._meta.concrete_fields)
    quote = connection.ops.quote_name
    # Only the model's own table and column names (quoted) go into the text; values are parameters.
    head = "INSERT INTO {} ({}) VALUES ".format(  # noqa: S608
        quote(Attempt._meta.db_table), ", ".join(quote(f.column) for f in fields)
    )
    one_row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    # Ids first, in a tight loop: new_id increments within a millisecond and only draws new random
    # bits when the clock moves on.
    ids = [new_id("att") for _ in attempts]
    prepared: dict[tuple[str, object], object] = {}

    def prep(field, value):
        if value is None or type(value) in (str, int):  # what the field would return unchanged
            return value
        if isinstance(value, dt.datetime):  # the batch's started_at: one value for every row
            key = (field.attname, value)
            if key not in prepared:
                prepared[key] = field.get_db_prep_save(value, connection)
            return prepared[key]
        return field.get_db_prep_save(value, connection)

    rows = [
        tuple(attempt_id if f.primary_key else prep(f, values.get(f.attname)) for f in fields)
        for attempt_id, values in zip(ids, attempts, strict=True)
    ]
    with connection.cursor() as cursor:
        for i in range(0, len(rows), 250):
            chunk = rows[i : i + 250]
            cursor.execute(head + ", ".join([one_row] * len(chunk)), [v for row in chunk for v in row])


def _messages_update(token: str, writes: list[Write]) -> int:
    """Messages with the same changes share one UPDATE."""
    groups: dict[tuple, list[str]] = defaultdict(list)
    for pk, changes, attempted in writes:
        groups[(tuple(sorted(changes.items())), attempted)].append(pk)
    written = 0
    for (items, attempted), pks in groups.items():
        values = dict(items, lease_until=None, lease_token="")
        if attempted:
            values["attempts"] = F("attempts") + 1
        for i in range(0, len(pks), 500):
            written += Message.objects.filter(pk__in=pks[i : i + 500], lease_token=token).update(**values)
    return written

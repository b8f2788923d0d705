"""Per-request context (request id, client IP, user agent, actor) read by the audit log.

Set by RequestIdMiddleware and the API auth; tasks and commands set it with ``bind``.
"""

from __future__ import annotations

import contextlib
import contextvars
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class RequestContext:
    request_id: str = ""
    ip: str = ""
    user_agent: str = ""
    actor_type: str = "system"  # user | service_account | system
    actor_id: str = ""
    actor_label: str = "system"


_EMPTY = RequestContext()  # frozen, so sharing it as the default is safe
_current: contextvars.ContextVar[RequestContext] = contextvars.ContextVar(
    "plaza_request_context",
    default=_EMPTY,  # noqa: B039
)


def current() -> RequestContext:
    return _current.get()


def update(**changes) -> None:
    _current.set(replace(_current.get(), **changes))


@contextlib.contextmanager
def bind(**values):
    token = _current.set(replace(_current.get(), **values))
    try:
        yield
    finally:
        _current.reset(token)


def reset(ctx: RequestContext | None = None) -> contextvars.Token:
    return _current.set(ctx or RequestContext())

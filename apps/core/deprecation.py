"""Deprecating an API operation: ``Deprecation`` (RFC 9745), ``Sunset`` (RFC 8594) and ``Link: rel="deprecation"``
on its responses, and ``deprecated: true`` with ``x-sunset`` in the OpenAPI document, where ``manage.py
check_contracts`` reads them (an operation may be removed once its sunset date has passed). Policy:
docs/compatibility.md.

    @router.get("/things", response=list[ThingOut])
    @deprecate(since=date(2026, 3, 1), sunset=date(2026, 9, 1), link="https://plaza.example.com/docs/changes#things")
    def list_things(request): ...

The decorator works above or below the router's decorator. It marks the request; ``DeprecationHeadersMiddleware``
(in MIDDLEWARE) writes the headers, so error responses of a deprecated operation carry them too.
"""

from __future__ import annotations

import calendar
import datetime as dt
import functools
import inspect
from dataclasses import dataclass

from django.utils.http import http_date
from ninja.decorators import decorate_view
from ninja.utils import contribute_operation_callback

MIN_NOTICE_MONTHS = 6
REQUEST_ATTRIBUTE = "plaza_deprecation"


def _add_months(day: dt.date, months: int) -> dt.date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _timestamp(day: dt.date) -> int:
    """Midnight UTC at the start of ``day``."""
    return calendar.timegm(day.timetuple())


@dataclass(frozen=True)
class Deprecation:
    since: dt.date  # the day the operation is (or will be) deprecated
    sunset: dt.date  # from this day on it may stop working and be removed
    link: str = ""  # a page explaining the change and what to use instead

    def __post_init__(self):
        if not (isinstance(self.since, dt.date) and isinstance(self.sunset, dt.date)):
            raise TypeError("since and sunset are dates")
        if self.sunset < _add_months(self.since, MIN_NOTICE_MONTHS):
            raise ValueError(
                f"The sunset ({self.sunset}) must be at least {MIN_NOTICE_MONTHS} months after the deprecation "
                f"({self.since}): see docs/compatibility.md."
            )

    def headers(self) -> dict[str, str]:
        headers = {"Deprecation": f"@{_timestamp(self.since)}", "Sunset": http_date(_timestamp(self.sunset))}
        if self.link:
            headers["Link"] = f'<{self.link}>; rel="deprecation"'
        return headers

    def openapi(self) -> dict:
        extra = {"x-deprecated-since": self.since.isoformat(), "x-sunset": self.sunset.isoformat()}
        return extra | ({"x-deprecation-link": self.link} if self.link else {})

    def apply(self, response) -> None:
        for name, value in self.headers().items():
            if name == "Link" and response.has_header("Link"):
                value = f"{response['Link']}, {value}"
            response[name] = value


def deprecate(*, since: dt.date, sunset: dt.date, link: str = ""):
    """Mark a django-ninja operation deprecated (see the module docstring)."""
    notice = Deprecation(since, sunset, link)

    def describe(operation) -> None:
        operation.deprecated = True
        operation.openapi_extra = {**(operation.openapi_extra or {}), **notice.openapi()}

    def mark(run):
        if inspect.iscoroutinefunction(run):

            @functools.wraps(run)
            async def marked_async(request, *args, **kwargs):
                setattr(request, REQUEST_ATTRIBUTE, notice)
                return await run(request, *args, **kwargs)

            return marked_async

        @functools.wraps(run)
        def marked(request, *args, **kwargs):
            setattr(request, REQUEST_ATTRIBUTE, notice)
            return run(request, *args, **kwargs)

        return marked

    def decorator(view_func):
        if hasattr(view_func, "_ninja_operation"):  # above @router.get(...): the operation exists
            describe(view_func._ninja_operation)
        else:  # below it: ninja calls back when it builds the operation
            contribute_operation_callback(view_func, describe)
        view_func.deprecation = notice
        return decorate_view(mark)(view_func)

    return decorator


class DeprecationHeadersMiddleware:
    """Adds the deprecation headers to every response of a deprecated operation."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        notice = getattr(request, REQUEST_ATTRIBUTE, None)
        if isinstance(notice, Deprecation):
            notice.apply(response)
        return response

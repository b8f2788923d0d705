from __future__ import annotations

from apps.core import context
from apps.core.http import accept_request_id, client_ip, user_agent


class RequestIdMiddleware:
    """Gives every request an id (echoing a valid ``X-Request-Id``) and sets the request context."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = accept_request_id(request.META.get("HTTP_X_REQUEST_ID"))
        request.request_id = request_id
        token = context.reset(
            context.RequestContext(
                request_id=request_id,
                ip=client_ip(request),
                user_agent=user_agent(request),
            )
        )
        try:
            response = self.get_response(request)
        finally:
            context._current.reset(token)
        response["X-Request-Id"] = request_id
        return response

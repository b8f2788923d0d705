"""Error pages: JSON envelopes under /api/, friendly pages elsewhere."""

from django.shortcuts import render

from apps.core.api import error_response


def not_found(request, exception=None):
    if request.path.startswith("/api/"):
        return error_response(request, status=404, message="No such endpoint.")
    return render(request, "errors/404.html", status=404)


def server_error(request):
    if request.path.startswith("/api/"):
        return error_response(request, status=500, message="Something went wrong on our side.")
    return render(request, "errors/500.html", {"request_id": getattr(request, "request_id", "")}, status=500)

from django.urls import path, register_converter

from apps.events import console, portal, views


class EventNameConverter:
    regex = r"[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(EventNameConverter, "event_name")

urlpatterns = [
    path("schemas/events/<event_name:name>/<int:version>.json", views.event_schema, name="event-schema"),
    path("events/", portal.catalog, name="event_catalog"),
    path("events/<event_name:name>/", portal.event_type_page, name="event_type_page"),
    # The tenant's event log in the admin console.
    path("orgs/<str:org_id>/console/events/", console.console_events, name="org_console_events"),
    path("orgs/<str:org_id>/console/events/<str:event_id>/", console.console_event, name="org_console_event"),
]

"""The admin console's SCIM page (the SCIM protocol itself is in ``urls``, at /scim/v2/)."""

from django.urls import path

from apps.orgs.scim import console_views

urlpatterns = [
    path("orgs/<str:org_id>/console/scim/", console_views.scim_console, name="console_scim"),
]

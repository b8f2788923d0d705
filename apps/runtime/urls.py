from django.urls import path

from apps.runtime import portal

urlpatterns = [
    path(
        "orgs/<str:org_id>/extensions/<str:extension_id>/invocations/",
        portal.invocation_list,
        name="invocation_list",
    ),
]

from django.urls import path

from apps.installs import views

urlpatterns = [
    path("install/<str:extension_id>/", views.install_start, name="install_start"),
    path("orgs/<str:org_id>/console/install/<str:extension_id>/", views.install_consent, name="install_consent"),
    path("orgs/<str:org_id>/console/installations/", views.installations, name="installations"),
    path(
        "orgs/<str:org_id>/console/installations/<str:installation_id>/",
        views.installation_detail,
        name="installation_detail",
    ),
    path(
        "orgs/<str:org_id>/console/installations/<str:installation_id>/cleanup/",
        views.installation_cleanup,
        name="installation_cleanup",
    ),
]

"""Console pages of the organisation's install controls (names fixed by docs/dev/marketplace-plan.md)."""

from django.urls import path

from apps.installs import controls_views as views

urlpatterns = [
    path("orgs/<str:org_id>/console/extension-rules/", views.install_rules, name="install_rules"),
    path("orgs/<str:org_id>/console/install-requests/", views.install_requests, name="install_requests"),
    path("orgs/<str:org_id>/console/install-requests/new/", views.install_request_new, name="install_request_new"),
]

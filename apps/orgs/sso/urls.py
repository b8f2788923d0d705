from django.urls import path

from apps.orgs.sso import views

urlpatterns = [
    path("accounts/sso/", views.sso_start, name="sso_start"),
    path("orgs/<str:org_id>/console/sso/", views.sso_console, name="sso_console"),
]

from django.urls import path

from apps.orgs.security import views

urlpatterns = [
    path("orgs/<str:org_id>/console/sessions/", views.org_sessions, name="console_sessions"),
    path(
        "orgs/<str:org_id>/console/members/<str:member_id>/security/",
        views.member_security,
        name="member_security",
    ),
    path(
        "orgs/<str:org_id>/console/members/<str:member_id>/sign-out/",
        views.member_sign_out,
        name="console_member_sign_out",
    ),
    path(
        "orgs/<str:org_id>/console/members/<str:member_id>/mfa-reset/",
        views.member_mfa_reset,
        name="console_member_mfa_reset",
    ),
]

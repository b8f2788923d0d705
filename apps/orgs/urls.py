from django.urls import path

from apps.orgs import views

urlpatterns = [
    path("", views.home, name="home"),
    path("orgs/switch/", views.org_switch, name="org_switch"),
    path("orgs/new/", views.org_create, name="org_create"),
    path("orgs/<str:org_id>/", views.org_overview, name="org_overview"),
    path("orgs/<str:org_id>/members/", views.org_members, name="org_members"),
    path("orgs/<str:org_id>/members/<str:member_id>/role/", views.member_update, name="member_update"),
    path("orgs/<str:org_id>/members/<str:member_id>/remove/", views.member_remove, name="member_remove"),
    path(
        "orgs/<str:org_id>/invitations/<str:invitation_id>/revoke/", views.invitation_revoke, name="invitation_revoke"
    ),
    path("orgs/<str:org_id>/domains/", views.org_domains, name="org_domains"),
    path("orgs/<str:org_id>/domains/<str:domain_id>/verify/", views.domain_verify, name="domain_verify"),
    path("orgs/<str:org_id>/domains/<str:domain_id>/remove/", views.domain_remove, name="domain_remove"),
    path("orgs/<str:org_id>/tokens/", views.org_tokens, name="org_tokens"),
    path("orgs/<str:org_id>/security/", views.org_security, name="org_security"),
    path("invitations/<str:token>/", views.invitation_accept, name="invitation_accept"),
]

from django.urls import path

from apps.orgs.console import views

urlpatterns = [
    path("orgs/<str:org_id>/console/", views.console_home, name="org_console"),
    path("orgs/<str:org_id>/console/members/", views.console_members, name="org_console_members"),
    path("orgs/<str:org_id>/console/groups/", views.console_groups, name="org_console_groups"),
    path("orgs/<str:org_id>/console/groups/<str:group_id>/", views.console_group, name="org_console_group"),
    path("orgs/<str:org_id>/console/audit/", views.console_audit, name="org_console_audit"),
]

"""SCIM 2.0 endpoints, included at ``/scim/v2/`` (the console page is in ``console_urls``)."""

from django.urls import path, re_path

from apps.orgs.scim import views

app_name = "scim"

urlpatterns = [
    path("ServiceProviderConfig", views.sp_config, name="service_provider_config"),
    path("Schemas", views.schemas, name="schemas"),
    path("Schemas/<str:rid>", views.schema, name="schema"),
    path("ResourceTypes", views.resource_types, name="resource_types"),
    path("ResourceTypes/<str:rid>", views.resource_type, name="resource_type"),
    path("Users", views.users, name="users"),
    path("Users/.search", views.users_dot_search, name="users_search"),
    path("Users/<str:rid>", views.user, name="user"),
    path("Groups", views.groups, name="groups"),
    path("Groups/.search", views.groups_dot_search, name="groups_search"),
    path("Groups/<str:rid>", views.group, name="group"),
    path(".search", views.dot_search, name="search"),
    path("Bulk", views.unsupported, name="bulk"),
    path("Me", views.unsupported, name="me"),
    re_path(r"^.*$", views.unknown, name="unknown"),
]

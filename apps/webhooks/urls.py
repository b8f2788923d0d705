from django.urls import path

from apps.webhooks import views, views_admin

urlpatterns = [
    path(
        "orgs/<str:org_id>/extensions/<str:extension_id>/webhooks/",
        views.endpoint_list,
        name="webhook_endpoints",
    ),
    path("orgs/<str:org_id>/webhooks/endpoints/<str:endpoint_id>/", views.endpoint_detail, name="webhook_endpoint"),
    path(
        "orgs/<str:org_id>/webhooks/endpoints/<str:endpoint_id>/messages/<str:message_id>/",
        views.message_detail,
        name="webhook_message",
    ),
    path(
        "orgs/<str:org_id>/webhooks/endpoints/<str:endpoint_id>/replay/",
        views.replay_page,
        name="webhook_replay",
    ),
    path(
        "orgs/<str:org_id>/console/installations/<str:installation_id>/deliveries/",
        views_admin.delivery_list,
        name="installation_deliveries",
    ),
    path(
        "orgs/<str:org_id>/console/installations/<str:installation_id>/deliveries/<str:message_id>/",
        views_admin.delivery_detail,
        name="installation_delivery",
    ),
]

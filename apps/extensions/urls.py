from django.urls import path

from apps.extensions import portal, views

urlpatterns = [
    path("schemas/extension.v1.json", views.manifest_schema, name="manifest-schema"),
    path(".well-known/plaza-signing-keys.json", views.platform_keys, name="platform-signing-keys"),
    path("tools/manifest/", portal.manifest_check, name="manifest_check"),
    path("orgs/<str:org_id>/extensions/", portal.extension_list, name="extension_list"),
    path("orgs/<str:org_id>/extensions/<str:extension_id>/", portal.extension_detail, name="extension_detail"),
    path(
        "orgs/<str:org_id>/extensions/<str:extension_id>/versions/<str:version_id>/",
        portal.version_detail,
        name="version_detail",
    ),
    path("orgs/<str:org_id>/signing-keys/", portal.signing_key_list, name="signing_key_list"),
]

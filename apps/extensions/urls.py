from django.urls import path

from apps.extensions import views

urlpatterns = [
    path("schemas/extension.v1.json", views.manifest_schema, name="manifest-schema"),
    path(".well-known/plaza-signing-keys.json", views.platform_keys, name="platform-signing-keys"),
]

from django.urls import path, re_path

from apps.embed import console, demo_host, views

urlpatterns = [
    # Plaza's origin: what embed.js calls, the loader and the public keys.
    path("embed/embed.js", views.embed_loader, name="embed_loader"),
    path("embed/v1/launches/<str:launch_id>/slots/<str:slot>", views.launch_slot_frames, name="embed_frames"),
    path("embed/v1/launches/<str:launch_id>/tokens", views.launch_token, name="embed_tokens"),
    path("embed/v1/launches/<str:launch_id>/theme", views.launch_theme, name="embed_theme"),
    path(".well-known/jwks.json", views.jwks, name="embed_jwks"),
    # Widget origins (apps.embed.middleware admits only /w/ there, and /w/ only there).
    path("w/sdk.js", views.widget_sdk, name="widget_sdk"),
    re_path(r"^w/(?P<view_key>[A-Za-z0-9_-]{20,64})/(?P<path>[^?#]{1,200})$", views.widget_file, name="widget_file"),
    # The demo host origin.
    path("demo-host/", demo_host.demo_host_page, name="demo_host"),
    # Console pages of the organisation's admins.
    path("orgs/<str:org_id>/console/embeds/", console.embed_settings_page, name="embed_settings"),
]

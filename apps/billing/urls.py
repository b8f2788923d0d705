from django.urls import path

from apps.billing import views

urlpatterns = [
    path("orgs/<str:org_id>/console/entitlements/", views.entitlements_page, name="billing_entitlements"),
]

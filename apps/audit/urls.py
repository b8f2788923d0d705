from django.urls import path

from apps.audit import views

urlpatterns = [path("orgs/<str:org_id>/audit/", views.org_audit, name="org_audit")]

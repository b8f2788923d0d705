from django.urls import path

from apps.certification import portal

urlpatterns = [
    path("orgs/<str:org_id>/certification/<str:run_id>/", portal.run_detail, name="certification_run"),
    path("staff/certification/", portal.staff_queue, name="staff_certification_queue"),
    path("staff/certification/<str:run_id>/", portal.staff_run_detail, name="staff_certification_run"),
]

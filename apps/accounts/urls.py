from django.urls import path

from apps.accounts import views

urlpatterns = [
    path("mfa/", views.mfa_settings, name="mfa_settings"),
    path("mfa/enroll/", views.mfa_enroll, name="mfa_enroll"),
    path("mfa/backup-codes/", views.mfa_backup_codes, name="mfa_backup_codes"),
    path("mfa/disable/", views.mfa_disable, name="mfa_disable"),
    path("mfa/verify/", views.mfa_verify, name="mfa_verify"),
    path("sessions/", views.sessions, name="sessions"),
]

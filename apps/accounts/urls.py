from django.urls import include, path

from apps.accounts import passkeys, views

urlpatterns = [
    path("mfa/", views.mfa_settings, name="mfa_settings"),
    path("mfa/enroll/", views.mfa_enroll, name="mfa_enroll"),
    path("mfa/backup-codes/", views.mfa_backup_codes, name="mfa_backup_codes"),
    path("mfa/disable/", views.mfa_disable, name="mfa_disable"),
    path("mfa/verify/", views.mfa_verify, name="mfa_verify"),
    path("mfa/passkeys/<str:passkey_id>/delete/", views.mfa_passkey_delete, name="mfa_passkey_delete"),
    # django-otp-webauthn's ceremonies, under its own namespace (its template tags reverse them).
    path("mfa/passkeys/", include((passkeys.urlpatterns, "otp_webauthn"))),
    path("sessions/", views.sessions, name="sessions"),
]

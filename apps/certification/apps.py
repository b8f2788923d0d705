from django.apps import AppConfig


class CertificationConfig(AppConfig):
    name = "apps.certification"
    label = "certification"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from apps.certification import receivers  # noqa: F401  (connects the signal receivers)

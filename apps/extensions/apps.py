from django.apps import AppConfig


class ExtensionsConfig(AppConfig):
    name = "apps.extensions"
    label = "extensions"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from apps.extensions import checks  # noqa: F401  (registers the system checks)

from django.apps import AppConfig


class InstallsConfig(AppConfig):
    name = "apps.installs"
    label = "installs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from apps.installs import receivers  # noqa: F401  (connects the signal receivers)

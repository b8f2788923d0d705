from django.apps import AppConfig


class ListingsConfig(AppConfig):
    name = "apps.listings"
    label = "listings"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from apps.listings import receivers  # noqa: F401  (connects the signal receivers)

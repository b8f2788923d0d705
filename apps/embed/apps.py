from django.apps import AppConfig


class EmbedConfig(AppConfig):
    name = "apps.embed"
    label = "embed"
    default_auto_field = "django.db.models.BigAutoField"

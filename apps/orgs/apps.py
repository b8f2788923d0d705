from django.apps import AppConfig


class OrgsConfig(AppConfig):
    name = "apps.orgs"
    label = "orgs"

    def ready(self) -> None:
        from apps.orgs.sso import receivers  # noqa: F401  (single sign-on after-login hooks)

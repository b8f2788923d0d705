import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

application = get_asgi_application()

from django.conf import settings  # noqa: E402  (settings are loaded by get_asgi_application)

if settings.PLAZA_TASKS_EMBEDDED and not settings.IS_TEST:
    from apps.core.executor import executor

    executor.start()

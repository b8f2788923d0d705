import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

application = get_wsgi_application()

if settings.PLAZA_TASKS_EMBEDDED and not settings.IS_TEST:
    from apps.core.executor import executor

    executor.start()

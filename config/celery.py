"""The Celery application. Without CELERY_BROKER_URL tasks run on the embedded executor."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("plaza", task_cls="apps.core.executor:PlazaTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

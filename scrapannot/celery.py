"""The Celery app: `celery -A scrapannot worker` and `celery -A scrapannot beat`."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scrapannot.settings")

app = Celery("scrapannot")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

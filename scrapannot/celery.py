"""The Celery app: `celery -A scrapannot worker` and `celery -A scrapannot beat`."""

import os

from celery import Celery
from celery import Task as CeleryTask
from django.db import InterfaceError, OperationalError

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scrapannot.settings")

# What a restart of PostgreSQL fixes: a dropped or refused connection. (Django wraps psycopg's
# errors in these; a task's next delivery starts on a fresh connection, see Celery's Django fixup.)
DATABASE_TRANSIENT: tuple[type[Exception], ...] = (OperationalError, InterfaceError)


class Task(CeleryTask):
    """Every task retries what a restart fixes, with exponential backoff and full jitter (so that
    the tasks a restart failed together do not all come back at the same instant): 2, 4, 8 ...
    seconds, at most 120 s apart, about seven minutes of tries in all. A task naming its own
    `autoretry_for` must include DATABASE_TRANSIENT."""

    autoretry_for = DATABASE_TRANSIENT
    retry_backoff = 2
    retry_backoff_max = 120
    retry_jitter = True
    max_retries = 8


app = Celery("scrapannot", task_cls=Task)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# The operator application keeps the reports helper's tasks apart from operations/tasks.py.
app.autodiscover_tasks(related_name="report_tasks")

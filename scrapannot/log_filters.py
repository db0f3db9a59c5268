"""Logging filters that keep the console for what needs a look.

An expected refusal (a 403 for a page outside the user's role) is one line, not a traceback;
kombu's "No hostname was supplied" is dropped when the broker is the in-process `memory://`
one, where no host is ever contacted.
"""

import logging

from django.conf import settings


class RefusalsWithoutTraceback(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "status_code", None) == 403:
            record.exc_info, record.exc_text = None, None
        return True


class InProcessBrokerHostname(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        in_process = settings.CELERY_BROKER_URL.startswith("memory://")
        return not (in_process and record.getMessage().startswith("No hostname was supplied"))

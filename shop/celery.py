"""The Celery app. Tasks are doorbells: each says "look at X now"; PostgreSQL holds the facts."""

import os
from typing import Any

from celery import Celery, signals

from .worker_heartbeat import Heartbeat

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")

app = Celery("shop")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.steps["consumer"].add(Heartbeat)  # GET /api/health counts the workers alive


@signals.setup_logging.connect
def log_as_the_shop(**kwargs: Any) -> None:
    """The worker and the beat log through settings.LOGGING, like every process of the shop
    (LOG_FORMAT, LOG_LEVEL, the saga's ids on each line). Left to itself, Celery would replace the
    root logger's handler with its own format, which drops the ids; `--loglevel` is not used."""
    from django.conf import settings
    from django.utils.log import configure_logging

    configure_logging(settings.LOGGING_CONFIG, settings.LOGGING)

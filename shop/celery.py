"""The Celery app. Tasks are doorbells: each says "look at X now"; PostgreSQL holds the facts."""

import os

from celery import Celery

from .worker_heartbeat import Heartbeat

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")

app = Celery("shop")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.steps["consumer"].add(Heartbeat)  # GET /api/health counts the workers alive

"""The toy project's Celery app, as any Django project has one (`celery -A saga.tests worker -B`)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "saga.tests.settings")

app = Celery("toyshop")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()  # finds saga.tasks: advance_saga, sweep_sagas, purge_outbox

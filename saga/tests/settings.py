"""The smallest project that installs the saga engine: no shop, no contexts, only the toy app of
the engine's tests. The engine's own tests run under it (`make test` runs them first), which
proves the app is reusable as it is; saga/README.md shows these settings to a project."""
import os

import dj_database_url

SECRET_KEY = "saga-engine-tests"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "rest_framework",
    "saga",
    "saga.tests.toyshop",
]
DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"])}
ROOT_URLCONF = "saga.tests.urls"

# Celery (the app is saga/tests/celery.py): Redis only rings the doorbell.
CELERY_BROKER_URL = os.environ["REDIS_URL"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("TOYSHOP_CELERY_QUEUE", "toyshop")
CELERY_BEAT_SCHEDULE = {
    "sweep-sagas": {"task": "saga.tasks.sweep_sagas", "schedule": float(os.environ.get("TOYSHOP_SWEEP_INTERVAL", "5"))},
    "purge-outbox": {"task": "saga.tasks.purge_outbox", "schedule": 3600.0},
}

# The saga engine: Kafka's address is the one setting without a default (see saga/conf.py).
KAFKA_BOOTSTRAP_SERVERS = os.environ["KAFKA_BOOTSTRAP_SERVERS"]
KAFKA_TOPICS = {"saga_events": "toyshop.sagas"}  # the engine's events on a topic of the project's naming

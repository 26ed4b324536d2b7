"""The smallest project that installs the saga engine: no shop, no contexts, only the toy app of
the engine's tests. The engine's own tests run under it (`make test` runs them first), which
proves the app is reusable as it is; saga/README.md quotes these settings."""

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
DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"])}  # PostgreSQL
ROOT_URLCONF = "saga.tests.urls"

# Celery (the app is in celery.py): Redis only rings the doorbell, PostgreSQL holds the facts.
CELERY_BROKER_URL = os.environ["REDIS_URL"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Longer than any task; a frozen Redis holds no request, sweep or worker for long.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600, "socket_timeout": 0.5, "socket_connect_timeout": 0.5}
CELERY_TASK_PUBLISH_RETRY = False  # a doorbell that cannot be rung is rung by the sweeper
CELERY_BEAT_SCHEDULE = {
    "sweep-sagas": {"task": "saga.tasks.sweep_sagas", "schedule": 5.0},
    "purge-outbox": {"task": "saga.tasks.purge_outbox", "schedule": 3600.0},
}

# The saga engine: Kafka's address is the one setting without a default (saga/core/conf.py).
KAFKA_BOOTSTRAP_SERVERS = os.environ["KAFKA_BOOTSTRAP_SERVERS"]
KAFKA_TOPICS = {"saga_events": "toyshop.sagas"}  # optional: a topic of the project's naming

# For the engine's own tests only: a Celery queue per test, and a quick sweeper.
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("TOYSHOP_CELERY_QUEUE", "celery")
CELERY_BEAT_SCHEDULE["sweep-sagas"]["schedule"] = float(os.environ.get("TOYSHOP_SWEEP_INTERVAL", "5"))
if os.environ.get("TOYSHOP_REMOTE_PARTICIPANTS"):
    SAGA_REMOTE_PARTICIPANTS = os.environ["TOYSHOP_REMOTE_PARTICIPANTS"].split(",")

"""The smallest project that installs the saga engine: no shop, no contexts. The engine's own
tests run under it (`make test` runs them first), which proves the app is reusable as it is."""
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
KAFKA_BOOTSTRAP_SERVERS = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
CELERY_BROKER_URL = os.environ.get("REDIS_URL", "memory://")

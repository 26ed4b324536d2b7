"""Settings of the shop, read from the environment (12-factor).

`make run` and `make test` start embedded services when DATABASE_URL, REDIS_URL or
KAFKA_BOOTSTRAP_SERVERS are unset, and export their addresses here; see tools/devstack/stack.py.
"""

import os
import re
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None:
        raise ImproperlyConfigured(
            f"{name} is not set. Start the shop with `make run` (which starts embedded "
            f"services and sets it), or export {name} yourself."
        )
    return value


def env_bool(name: str, default: bool) -> bool:
    return env(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


# --- Environment and security ------------------------------------------------------------------
# DJANGO_ENV=development (the default: `make run`, `make test`) or production (the Docker image,
# docker compose). Production refuses to start without a real secret key and a list of hosts, keeps
# DEBUG off and turns on the HTTPS hardening, so that `manage.py check --deploy` is clean for it.
ENVIRONMENTS = ("development", "production")
DJANGO_ENV = env("DJANGO_ENV", "development").strip().lower()
if DJANGO_ENV not in ENVIRONMENTS:
    raise ImproperlyConfigured(f"DJANGO_ENV={DJANGO_ENV!r} is unknown: use one of {', '.join(ENVIRONMENTS)}.")
PRODUCTION = DJANGO_ENV == "production"

# Usable in development only: production refuses it.
DEVELOPMENT_SECRET_KEY = "dev-only-insecure-key-change-me"
GENERATE_KEY = "python -c 'import secrets; print(secrets.token_urlsafe(50))'"


def secret_key() -> str:
    """DJANGO_SECRET_KEY, or the content of the file DJANGO_SECRET_KEY_FILE names (Docker secrets);
    in production a strong one is required."""
    key = os.environ.get("DJANGO_SECRET_KEY", "").strip()
    key_file = os.environ.get("DJANGO_SECRET_KEY_FILE", "").strip()
    if not key and key_file:
        try:
            key = Path(key_file).read_text().strip()
        except OSError as error:
            raise ImproperlyConfigured(f"DJANGO_SECRET_KEY_FILE={key_file} cannot be read: {error.strerror}.") from None
    if not PRODUCTION:
        return key or DEVELOPMENT_SECRET_KEY
    if not key:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set, and DJANGO_ENV=production needs it (or DJANGO_SECRET_KEY_FILE "
            f"naming a file that holds it). Generate one with: {GENERATE_KEY}"
        )
    if key == DEVELOPMENT_SECRET_KEY:
        raise ImproperlyConfigured(
            f"DJANGO_SECRET_KEY is the development key, which DJANGO_ENV=production refuses. Generate one with: "
            f"{GENERATE_KEY}"
        )
    # Django's own measure of a weak key (check --deploy, security.W009).
    if len(key) < 50 or len(set(key)) < 5 or key.startswith("django-insecure-"):
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is too weak for DJANGO_ENV=production (it needs 50 characters or more, 5 or more "
            f"of them different, and no 'django-insecure-' prefix). Generate one with: {GENERATE_KEY}"
        )
    return key


SECRET_KEY = secret_key()
DEBUG = env_bool("DJANGO_DEBUG", not PRODUCTION)
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DJANGO_DEBUG is on, which DJANGO_ENV=production refuses: it shows settings and code.")
ALLOWED_HOSTS = [h.strip() for h in env("DJANGO_ALLOWED_HOSTS", "" if PRODUCTION else "*").split(",") if h.strip()]
if PRODUCTION and (not ALLOWED_HOSTS or "*" in ALLOWED_HOSTS):
    raise ImproperlyConfigured(
        "DJANGO_ALLOWED_HOSTS must name the site's hosts with DJANGO_ENV=production (comma-separated, "
        "e.g. shop.example.com; '*' is refused)."
    )
CSRF_TRUSTED_ORIGINS = [o.strip() for o in env("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()]

# HTTPS in production: redirect to it, cookies only over it, HSTS. DJANGO_HTTPS=false is for a
# local trial over plain HTTP only (docker compose on localhost); check --deploy then warns.
HTTPS = PRODUCTION and env_bool("DJANGO_HTTPS", True)
SECURE_SSL_REDIRECT = HTTPS
# Health probes (container, load balancer) speak plain HTTP to the process itself.
SECURE_REDIRECT_EXEMPT = [r"^api/health$"]
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = int(env("DJANGO_HSTS_SECONDS", str(365 * 24 * 3600))) if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
# Behind a proxy that terminates TLS: trust its X-Forwarded-Proto (it must overwrite the client's).
if PRODUCTION and env_bool("DJANGO_BEHIND_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Django's defaults, stated: nosniff, no framing, same-origin referrer and opener policies.
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
# --- end of environment and security -------------------------------------------------------------

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and ReDoc served from here: /api/docs/ works offline
    "shop",
    "saga",
    "customers",
    "inventory",
    "payments",
    "orders",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "saga.messaging.context.CorrelationIdMiddleware",
]

ROOT_URLCONF = "shop.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "shop.wsgi.application"

# --- Topology and databases ----------------------------------------------------------------------
# SHOP_TOPOLOGY=monolith (the default): one database, every context in it, local participants commit
# with the saga's step. SHOP_TOPOLOGY=services: each context in a database of its own, and this
# process is one context's (SHOP_CONTEXT): `orders` (the default) is the web gateway, the Celery
# worker and beat, consume_events and the orders' relay; `customers`, `inventory` or `payments` is
# that context's run_participant and relay_outbox. See docs/topology.md.
TOPOLOGIES = ("monolith", "services")
SHOP_TOPOLOGY = env("SHOP_TOPOLOGY", "monolith").strip().lower()
if SHOP_TOPOLOGY not in TOPOLOGIES:
    raise ImproperlyConfigured(f"SHOP_TOPOLOGY={SHOP_TOPOLOGY!r} is unknown: use one of {', '.join(TOPOLOGIES)}.")
SERVICES = SHOP_TOPOLOGY == "services"
PARTICIPANT_CONTEXTS = ("customers", "inventory", "payments")
SHOP_CONTEXTS = ("orders", *PARTICIPANT_CONTEXTS)
SHOP_CONTEXT = env("SHOP_CONTEXT", "orders").strip().lower()
if SHOP_CONTEXT not in SHOP_CONTEXTS:
    raise ImproperlyConfigured(f"SHOP_CONTEXT={SHOP_CONTEXT!r} is unknown: use one of {', '.join(SHOP_CONTEXTS)}.")

# Seconds a session may sit idle inside a transaction before PostgreSQL ends it (and its locks). A
# saga step runs inside its transaction, so this must stay above the longest step's timeout
# (`manage.py check --database default` warns of a step that reaches it).
DATABASE_IDLE_IN_TRANSACTION_TIMEOUT = float(env("DATABASE_IDLE_IN_TRANSACTION_TIMEOUT", "300"))


def database_session_options(*, idle_in_transaction_timeout: float) -> str:
    """The server's side of each session (libpq `options`): PostgreSQL notices a vanished client
    within about a minute (its keepalives; the server's default waits two hours), and ends a
    session left idle in a transaction (a hung or frozen worker) after `idle_in_transaction_timeout`
    seconds. Either way the session's row and advisory locks (a saga's row, the advisory lock of a
    saga being advanced, the relay's lock) go with it."""
    values = {
        "tcp_keepalives_idle": 30,
        "tcp_keepalives_interval": 10,
        "tcp_keepalives_count": 3,
        "idle_in_transaction_session_timeout": round(idle_in_transaction_timeout * 1000),  # milliseconds
    }
    return " ".join(f"-c {name}={value}" for name, value in values.items())


_SERVER_SIDE = database_session_options(idle_in_transaction_timeout=DATABASE_IDLE_IN_TRANSACTION_TIMEOUT)


def database(url: str) -> dict:
    """One alias of DATABASES: persistent connections checked before reuse, the server's session
    options, and the client's keepalives (which notice a vanished server, with the same timings).
    The URL's own `options`, if any, come after the shop's and win."""
    config = dj_database_url.parse(url, conn_max_age=60)
    config["CONN_HEALTH_CHECKS"] = True
    options = config.setdefault("OPTIONS", {})
    options.update(
        {
            "keepalives": 1,
            "keepalives_idle": 30,
            "keepalives_interval": 10,
            "keepalives_count": 3,
            "options": f"{_SERVER_SIDE} {options.get('options', '')}".strip(),
        }
    )
    return dict(config)


def context_database_url(context: str) -> str:
    """<CONTEXT>_DATABASE_URL, else DATABASE_URL."""
    return os.environ.get(f"{context.upper()}_DATABASE_URL") or env("DATABASE_URL")


def services_databases() -> dict[str, dict]:
    """This process's own context's database as `default`; the gateway (orders) also reaches each
    participant context's database under the context's name (shop/routers.py sends each context's
    models there). A participant's process has its own database only."""
    aliases = {"default": SHOP_CONTEXT}
    if SHOP_CONTEXT == "orders":
        aliases.update({context: context for context in PARTICIPANT_CONTEXTS})
    databases = {alias: database(context_database_url(context)) for alias, context in aliases.items()}
    # Two contexts in one database would share its migration records, so one context's migrations,
    # applied (as nothing) on the other's alias, would never create its tables.
    places: dict[tuple, str] = {}
    for alias, config in databases.items():
        place = (config["HOST"], config["PORT"], config["NAME"])
        if place in places:
            raise ImproperlyConfigured(
                f"SHOP_TOPOLOGY=services needs a database of its own for each context, but {aliases[alias]} and "
                f"{aliases[places[place]]} are both in {config['NAME']!r} on {config['HOST']}:{config['PORT']}. "
                "Set ORDERS_DATABASE_URL, CUSTOMERS_DATABASE_URL, INVENTORY_DATABASE_URL and "
                "PAYMENTS_DATABASE_URL (`make run` does, for its embedded PostgreSQL)."
            )
        places[place] = alias
    return databases


DATABASES = services_databases() if SERVICES else {"default": database(env("DATABASE_URL"))}
DATABASE_ROUTERS = ["shop.routers.ContextRouter"]
# --- end of topology and databases ---------------------------------------------------------------

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Serve app static files straight from their folders, so `make run` needs no collectstatic.
WHITENOISE_USE_FINDERS = True

# Largest JSON body the API accepts; larger requests are refused with 413 (common/parsers.py).
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["common.permissions.ModelPermissions"],
    "DEFAULT_PAGINATION_CLASS": "common.pagination.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "common.schema.AutoSchema",
    # JSON only, parsed strictly (depth, duplicated keys, size): see common/parsers.py.
    "DEFAULT_PARSER_CLASSES": ["common.parsers.JSONParser"],
    # ... so DRF's test client sends JSON unless told otherwise (its default, multipart, is refused).
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    # One error shape for every 4xx and 503 (drf-standardized-errors, composed in common/api.py):
    # {"type", "detail", "code", "errors": [{"code", "detail", "attr"}]}.
    "EXCEPTION_HANDLER": "drf_standardized_errors.handler.exception_handler",
    "COERCE_DECIMAL_TO_STRING": True,
}

DRF_STANDARDIZED_ERRORS = {
    "EXCEPTION_HANDLER_CLASS": "common.api.ExceptionHandler",
    "EXCEPTION_FORMATTER_CLASS": "common.api.ErrorFormatter",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Saga shop API",
    "DESCRIPTION": "Orders placed as sagas across customers, inventory and payments.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The documentation pages load their JavaScript and CSS from the shop itself, not from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "common.schema.declare_exactly_one",
        "common.schema.no_nul_in_query_text",
        "common.schema.add_links",
    ],
    "ENUM_NAME_OVERRIDES": {
        "OrderStatusEnum": "orders.models.Order.Status",
        "OrderReasonEnum": "orders.models.Order.Reason",
        "SagaStatusEnum": "saga.models.SagaStatus",
        "SagaStepStatusEnum": "saga.models.SagaStep.Status",
    },
}

# Celery: Redis is only the doorbell; every fact lives in PostgreSQL (see DESIGN.md).
REDIS_URL = env("REDIS_URL")
CELERY_BROKER_URL = REDIS_URL
# Every Redis client (Celery's producer and workers, the sweeper, the cache) gives up quickly: a frozen
# Redis (a stalled failover, a paused host) accepts connections and answers nothing, and no request or
# sweep waits on it. Orders are still taken (their sagas are rung by the sweeper once Redis is back),
# and the rate limit lets requests through.
REDIS_TIMEOUTS = {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600, **REDIS_TIMEOUTS}
CELERY_BROKER_CONNECTION_TIMEOUT = REDIS_TIMEOUTS["socket_connect_timeout"]
CELERY_TASK_PUBLISH_RETRY = False  # a doorbell that cannot be rung at once is rung by the sweeper
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)

KAFKA_BOOTSTRAP_SERVERS = env("KAFKA_BOOTSTRAP_SERVERS")
# A topic is named after its role (order_events, payment_commands: the roles follow from the
# messages the apps declare); KAFKA_TOPIC_<ROLE> renames one, e.g. KAFKA_TOPIC_ORDER_EVENTS=shop.orders.
_TOPIC_SIZES = {"KAFKA_TOPIC_PARTITIONS", "KAFKA_TOPIC_REPLICATION"}
KAFKA_TOPICS = {
    name.removeprefix("KAFKA_TOPIC_").lower(): value
    for name, value in os.environ.items()
    if name.startswith("KAFKA_TOPIC_") and name not in _TOPIC_SIZES
}
KAFKA_TOPIC_PARTITIONS = int(env("KAFKA_TOPIC_PARTITIONS", "4"))
KAFKA_TOPIC_REPLICATION = int(env("KAFKA_TOPIC_REPLICATION", "1"))
KAFKA_CONSUMER_GROUP = env("KAFKA_CONSUMER_GROUP", "shop")
# Sent outbox rows are kept this many seconds (default 7 days), then purged.
OUTBOX_RETENTION = float(env("OUTBOX_RETENTION", str(7 * 24 * 3600)))
# /api/health turns 503 when the oldest unsent outbox row is older than this.
OUTBOX_LAG_DEGRADED_SECONDS = float(env("OUTBOX_LAG_DEGRADED_SECONDS", "60"))

SHOP_ACCEPTANCE_TIMEOUT = int(env("SHOP_ACCEPTANCE_TIMEOUT", "1800"))
# The payment provider's adapter, a dotted path (payments/gateway.py).
PAYMENTS_GATEWAY = env("PAYMENTS_GATEWAY", "payments.gateway.SandboxGateway")

# --- Logging ---------------------------------------------------------------------------------------
# One JSON object a line in production, readable lines in development (LOG_FORMAT=json|console
# overrides). Lines about a request, a saga or a message carry request_id, saga_id, order_id, step
# and attempt (shop/logging.py).
LOG_FORMAT = env("LOG_FORMAT", "json" if PRODUCTION else "console").strip().lower()
if LOG_FORMAT not in ("json", "console"):
    raise ImproperlyConfigured(f"LOG_FORMAT={LOG_FORMAT!r}: use json or console.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "shop.logging.json_formatter"},
        "console": {"()": "shop.logging.console_formatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT},
        "discard": {"class": "logging.NullHandler"},
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {
        # Each record once, through the root's handler: not also through Django's own (DEBUG) one.
        "django": {"handlers": []},
        # The shop logs every request it serves (saga.http, with its request id and duration):
        # not again as runserver's access line, nor as Django's warning for each 4xx.
        "django.server": {"handlers": ["discard"], "propagate": False},
        "django.request": {"level": "ERROR"},
        # Celery's line for each task sent, received and done: the tasks are doorbells, and what
        # they did is logged by the engine with the saga's ids (the sweeper, when it rang any).
        # CELERY_LOG_LEVEL=INFO to see them.
        **{
            name: {"level": env("CELERY_LOG_LEVEL", "WARNING")}
            for name in ("celery.beat", "celery.worker.strategy", "celery.app.trace")
        },
        # kafka-python logs every failed attempt; the relay and the consumer report Kafka's state
        # themselves, once per change. KAFKA_LOG_LEVEL=INFO to see the library's own account.
        "kafka": {"level": env("KAFKA_LOG_LEVEL", "CRITICAL")},
    },
}
# /metrics (Prometheus): a logged-in user with saga.view_sagainstance, or this bearer token.
SAGA_METRICS_TOKEN = env("SAGA_METRICS_TOKEN", "")
# --- end of logging ------------------------------------------------------------------------------

# Sagas: a moving saga that has not moved for SAGA_STALL_AFTER seconds is re-enqueued by the
# sweeper, which runs every SAGA_SWEEP_INTERVAL seconds (Celery beat).
SAGA_STALL_AFTER = float(env("SAGA_STALL_AFTER", "30"))
SAGA_SWEEP_INTERVAL = float(env("SAGA_SWEEP_INTERVAL", "5"))
# A saga retrying one step this many times raises an alert (an ERROR line, /metrics, the dashboard).
SAGA_LONG_RETRY_ATTEMPTS = int(env("SAGA_LONG_RETRY_ATTEMPTS", "10"))
# Participants whose commands go through Kafka (served by `manage.py run_participant NAME`).
# In the services topology every participant context is remote: its rows are in its own database, which a
# local call, run in the step's transaction of the orders database, could not change with the step.
_REMOTE_BY_DEFAULT = ",".join(PARTICIPANT_CONTEXTS) if SERVICES else ""
SAGA_REMOTE_PARTICIPANTS = [
    name.strip() for name in env("SAGA_REMOTE_PARTICIPANTS", _REMOTE_BY_DEFAULT).split(",") if name.strip()
]
if SERVICES and (_local := [name for name in PARTICIPANT_CONTEXTS if name not in SAGA_REMOTE_PARTICIPANTS]):
    raise ImproperlyConfigured(
        f"SHOP_TOPOLOGY=services runs every participant context in its own process, but SAGA_REMOTE_PARTICIPANTS "
        f"leaves out {', '.join(_local)}: name {', '.join(PARTICIPANT_CONTEXTS)} (or leave it unset)."
    )
# Faults injected into saga steps (crash and chaos tests only); see saga/testing/faults.py.
SAGA_FAULTS = env("SAGA_FAULTS", "")
CELERY_TASK_DEFAULT_QUEUE = env("SHOP_CELERY_QUEUE", "shop")
# The beat's tasks have a queue of their own, so that a sweep never waits behind a burst of doorbells.
# Every worker reads both (a worker started without -Q reads every queue named here).
SHOP_BEAT_QUEUE = f"{CELERY_TASK_DEFAULT_QUEUE}.beat"
CELERY_TASK_QUEUES = [Queue(CELERY_TASK_DEFAULT_QUEUE), Queue(SHOP_BEAT_QUEUE)]
CELERY_TASK_ROUTES = {
    "saga.tasks.sweep_sagas": {"queue": SHOP_BEAT_QUEUE},
    "saga.tasks.purge_outbox": {"queue": SHOP_BEAT_QUEUE},
}
CELERY_BEAT_SCHEDULE = {
    "sweep-sagas": {"task": "saga.tasks.sweep_sagas", "schedule": SAGA_SWEEP_INTERVAL},
    "purge-outbox": {"task": "saga.tasks.purge_outbox", "schedule": 3600.0},
}

# --- Cache and rate limits -----------------------------------------------------------------------
# Throttle counters live in Django's cache: per process in development (LocMem), shared by every
# gunicorn worker in production (Redis, REDIS_URL unless CACHE_URL says otherwise).
CACHE_URL = env("CACHE_URL", REDIS_URL if PRODUCTION else "locmem://")
if CACHE_URL.startswith(("redis://", "rediss://", "unix://")):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_URL,
            "KEY_PREFIX": "shop",
            # A frozen Redis must not hold a request: the throttle lets the request through instead.
            "OPTIONS": REDIS_TIMEOUTS,
        }
    }
elif CACHE_URL.startswith("locmem://"):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "shop"}}
else:
    raise ImproperlyConfigured(f"CACHE_URL={CACHE_URL!r}: use redis://host:port/db or locmem://.")

# Orders one user (one token) may place: "N/s", "N/min", "N/hour" or "N/day"; empty turns the limit
# off. Generous by default: it stops a runaway client, not the benchmarks or the chaos run.
SHOP_ORDER_RATE = env("SHOP_ORDER_RATE", "100/s").strip()
if SHOP_ORDER_RATE and not re.fullmatch(r"[1-9][0-9]*/(s|sec|m|min|h|hour|d|day)", SHOP_ORDER_RATE):
    raise ImproperlyConfigured(f"SHOP_ORDER_RATE={SHOP_ORDER_RATE!r}: use N/s, N/min, N/hour or N/day (or empty).")
REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"] = ["common.throttling.ScopedCreateThrottle"]
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {"orders": SHOP_ORDER_RATE or None}
# --- end of cache and rate limits -----------------------------------------------------------------

# --- The steps sagas are running ------------------------------------------------------------------
# The workers mark the step each saga is running as it starts (nothing of it is committed until it
# ends), and the web shows it (GET /api/sagas/{id}, the admin): always in the shared Redis, whatever
# cache the throttle uses, with timeouts short enough that a frozen Redis never holds a step.
CACHES["saga_running"] = {
    "BACKEND": "django.core.cache.backends.redis.RedisCache",
    "LOCATION": REDIS_URL,
    "KEY_PREFIX": "shop",
    "OPTIONS": {"socket_connect_timeout": 0.25, "socket_timeout": 0.25},
}
SAGA_RUNNING_CACHE = "saga_running"

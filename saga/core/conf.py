"""The engine's settings, with their defaults in one place.

A project sets what it needs in its Django settings (usually only KAFKA_BOOTSTRAP_SERVERS); every
other name falls back to the default here. Values are read when used, so a test's `settings`
override takes effect at once.
"""

from typing import Any

from django.conf import settings as django_settings

DEFAULTS: dict[str, Any] = {
    # Kafka: where the relay sends and the consumer reads. Required; no default makes sense.
    "KAFKA_BOOTSTRAP_SERVERS": None,
    # Topic names by role ("order_events", "payment_commands"); a role not named here is its own name.
    "KAFKA_TOPICS": {},
    "KAFKA_TOPIC_PARTITIONS": 4,
    "KAFKA_TOPIC_REPLICATION": 1,
    "KAFKA_CONSUMER_GROUP": "saga",
    # Sent outbox rows are kept this many seconds, then purged (7 days).
    "OUTBOX_RETENTION": 7 * 24 * 3600.0,
    # A moving saga that has not moved for this many seconds is re-enqueued by the sweeper.
    "SAGA_STALL_AFTER": 30.0,
    # Seconds between two sweeps (the beat's schedule of saga.tasks.sweep_sagas): a saga whose doorbell
    # waits in the queue past the stall time is looked at again after this long.
    "SAGA_SWEEP_INTERVAL": 5.0,
    # Participants whose commands go through Kafka (served by `manage.py run_participant NAME`).
    "SAGA_REMOTE_PARTICIPANTS": [],
    # A saga retrying one step this many times (a payment provider down for hours, after the pivot
    # where it only goes forward) is logged at ERROR and counted by /metrics and the dashboard.
    "SAGA_LONG_RETRY_ATTEMPTS": 10,
    # Seconds a request waits for a saga's row that another session holds (a step in progress, a
    # vanished worker's session not yet ended) before it gives up: `saga_signal` and `saga_cancel`
    # then raise SagaBusy (HTTP 409 saga_busy; the consumer gets the message again later).
    "SAGA_LOCK_TIMEOUT": 3.0,
    # The Django cache (its alias) where the workers mark the step each saga is running, for the
    # API and the admin: one every process shares (Redis), with short timeouts.
    "SAGA_RUNNING_CACHE": "default",
    # Faults injected into saga steps (crash and chaos tests only): see saga/testing/faults.py.
    "SAGA_FAULTS": "",
    # A bearer token that may read /metrics (Prometheus' `authorization: credentials`); besides it,
    # a user with the saga view permission may (with the project's API token, or a session). Empty: only such users.
    "SAGA_METRICS_TOKEN": "",
}


class SagaSettings:
    """`saga_settings.NAME`: the project's setting, or the engine's default."""

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"the saga engine has no setting {name}")
        value = getattr(django_settings, name, DEFAULTS[name])
        if value is None:
            raise LookupError(f"set {name} in your Django settings to use the saga engine")
        return value


saga_settings = SagaSettings()

"""What only a running process knows, counted in it: messages the relay sent and messages the
consumer took, by outcome. Everything the database knows is counted at scrape time instead
(metrics.py), which is right whatever the number of processes. For these two, several processes
on one host (gunicorn, Celery prefork) add up when PROMETHEUS_MULTIPROC_DIR names a shared,
empty directory (prometheus-client's multiprocess mode); the relay and the consumer are single
processes, so each may also be scraped on its own."""

from prometheus_client import Counter

RELAY_SENT = Counter("saga_relay_messages_sent", "Outbox messages the relay sent to Kafka.", ["topic"])
CONSUMED = Counter(
    "saga_consumer_messages",
    "Kafka messages consumed, by outcome (processed, duplicate, ignored, parked).",
    ["topic", "outcome"],
)

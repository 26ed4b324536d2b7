"""The engine's base, under everything else in it: its settings (conf), the ids every log line
carries (ids, logs, celery_signals), the Prometheus counters, hot-path row writes (rows) and the
handling of a lost database connection (connections). It imports nothing of the engine."""

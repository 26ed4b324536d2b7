"""The database router of the two topologies (docs/topology.md).

Monolith: one database, `default`, has everything. Services: each context has a database of its
own. A process's `default` is its own context's (SHOP_CONTEXT); the gateway (orders) also has an
alias per participant context, named after it, and the rows of that context's models are read and
written there. Each database gets only its owner's tables: orders' gets orders, the whole saga
engine and Django's own apps (auth, admin, sessions, ...); a participant context's gets its own
app and the messaging tables every participant needs (outbox, inbox, dead letters, the commands it
served), and nothing of the saga's orchestration.
"""

from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS
from django.db.models import Model

from common.databases import database_of_app

# The saga app's models a participant's database holds: the outbox its relay sends (with the
# trigger that wakes it: the RunSQL of saga 0001 names this model in its hints), the inbox and
# dead letters of its consumer, and the commands it served (their results, for a command sent again).
PARTICIPANT_SAGA_MODELS = frozenset({"outboxmessage", "inboxmessage", "deadletter", "processedcommand"})


class ContextRouter:
    def db_for_read(self, model: type[Model], **hints: Any) -> str:
        return database_of_app(model._meta.app_label)

    def db_for_write(self, model: type[Model], **hints: Any) -> str:
        return database_of_app(model._meta.app_label)

    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None, **hints: Any) -> bool:
        if settings.SHOP_TOPOLOGY == "monolith":
            return True
        owner = settings.SHOP_CONTEXT if db == DEFAULT_DB_ALIAS else db
        if owner == "orders":
            return app_label not in settings.PARTICIPANT_CONTEXTS
        return app_label == owner or (app_label == "saga" and model_name in PARTICIPANT_SAGA_MODELS)

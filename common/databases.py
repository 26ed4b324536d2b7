"""Which database a context's rows live in, for the services that write them.

In the monolith every context is in `default`. In the services topology each context has its own
database, and the web gateway (the orders process) reaches a participant context's database under
the context's name (shop/routers.py routes the context's models there; docs/topology.md): a
service that writes a context's rows and announces them must open its transaction, and write its
outbox message, in that database, so that the row and its message commit together.
"""

from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from django.db import DEFAULT_DB_ALIAS, connections, models, router, transaction

P = ParamSpec("P")
T = TypeVar("T")


def database_of_app(app_label: str) -> str:
    """The alias of `app_label`'s database in this process: the alias named after the app if this
    process has one (a participant context, in the gateway of the services topology), else default."""
    return app_label if app_label in connections.settings else DEFAULT_DB_ALIAS


def database_for(model: type[models.Model]) -> str:
    """The alias `model`'s rows are written in (as the ORM writes them: the routers' answer)."""
    return router.db_for_write(model)


def atomic_for(model: type[models.Model]) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """Run the decorated service in one transaction of the database `model`'s rows live in, chosen
    at each call."""

    def decorate(service: Callable[P, T]) -> Callable[P, T]:
        @wraps(service)
        def in_transaction(*args: P.args, **kwargs: P.kwargs) -> T:
            with transaction.atomic(using=database_for(model)):
                return service(*args, **kwargs)

        return in_transaction

    return decorate

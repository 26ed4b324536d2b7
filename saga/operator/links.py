"""Links from the saga admin to the project's own pages, which the engine cannot know: the page
of a saga's aggregate (the order of a place-order saga), others (its customer), and the keys of a
saga's data its search looks in. A project registers them from its own admin module:

    saga_admin_links_register(
        "place_order",
        aggregate_label="order",
        aggregate_url=lambda order_id: reverse("admin:orders_order_change", args=[order_id]),
        related=lambda saga: [("customer", customer_name(saga), customer_admin_url(saga))],
        search_keys=("customer_id",),
    )

A saga type with nothing registered shows its aggregate id as plain text.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from uuid import UUID

from django.urls import NoReverseMatch

from saga.models import SagaInstance

Link = tuple[str, str, str]  # (what it is, the link's text, URL): ("customer", "Ada Lovelace", "/admin/...")


def _no_links(saga: SagaInstance) -> list[Link]:
    return []


@dataclass(frozen=True)
class SagaTypeLinks:
    aggregate_label: str
    aggregate_url: Callable[[UUID], str | None]
    related: Callable[[SagaInstance], list[Link]] = field(default=_no_links)
    search_keys: tuple[str, ...] = ()


_registered: dict[str, SagaTypeLinks] = {}


def saga_admin_links_register(
    saga_type: str,
    *,
    aggregate_label: str,
    aggregate_url: Callable[[UUID], str | None],
    related: Callable[[SagaInstance], list[Link]] = _no_links,
    search_keys: tuple[str, ...] = (),
) -> None:
    _registered[saga_type] = SagaTypeLinks(aggregate_label, aggregate_url, related, search_keys)


def links_for(saga_type: str) -> SagaTypeLinks | None:
    return _registered.get(saga_type)


def search_keys() -> set[str]:
    return {key for links in _registered.values() for key in links.search_keys}


def aggregate_link(saga: SagaInstance) -> tuple[str, str] | None:
    """(label, URL) of the saga's aggregate's page, if the project registered one."""
    links = links_for(saga.type)
    if links is None:
        return None
    url = links.aggregate_url(saga.aggregate_id)
    return (links.aggregate_label, url) if url else None


def related_links(saga: SagaInstance) -> list[Link]:
    links = links_for(saga.type)
    if links is None:
        return []
    try:
        return links.related(saga)
    except (KeyError, ValueError, LookupError, NoReverseMatch):
        return []  # data without the key (an older version's saga): no link rather than an error page

"""`manage.py check` catches a misconfigured engine before anything runs."""

import json
from typing import Any

from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.db import connections

from saga.core.conf import saga_settings

from .messaging import catalog
from .orchestration import registry
from .orchestration.definition import Step
from .orchestration.participants import participants


@register()
def saga_settings_check(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    problems: list[CheckMessage] = []
    declared = set(catalog.roles())
    for role in sorted(set(saga_settings.KAFKA_TOPICS) - declared):
        problems.append(
            Warning(
                f"KAFKA_TOPICS renames {role!r}, a topic no app declares messages for",
                hint=f"declared topics: {', '.join(sorted(declared))}",
                id="saga.W001",
            )
        )
    for name in saga_settings.SAGA_REMOTE_PARTICIPANTS:
        try:
            participants.get(name)
        except LookupError as error:
            problems.append(
                Warning(
                    str(error), hint="SAGA_REMOTE_PARTICIPANTS names participants that apps register", id="saga.W002"
                )
            )
    problems.extend(_unknown_fault_steps())
    return problems


def _unknown_fault_steps() -> list[CheckMessage]:
    """A fault for a step no definition has would be injected nowhere, and the run that asked for
    it (a chaos run, a crash test) would pass without the fault: refuse to start instead."""
    if not saga_settings.SAGA_FAULTS:
        return []
    steps = {step.name for definition in registry.definitions.all() for step in definition.steps}
    named = {name.split(":")[0] for name in json.loads(saga_settings.SAGA_FAULTS)}
    return [
        Error(
            f"SAGA_FAULTS names {name!r}, a step of no registered saga definition",
            hint=f"steps: {', '.join(sorted(steps))}",
            id="saga.E001",
        )
        for name in sorted(named - steps)
    ]


@register(Tags.database)
def idle_in_transaction_check(app_configs: Any = None, databases: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """A step runs inside its transaction, idle as far as PostgreSQL sees while it waits (on a
    provider, say): a step whose timeout reaches the session's `idle_in_transaction_session_timeout`
    would have its session ended by the server mid-step. A database check (`manage.py check
    --database default`, run by `migrate`): it reads the setting the sessions get."""
    problems: list[CheckMessage] = []
    for alias in databases or ():
        limit = _idle_in_transaction_timeout(alias)
        if not limit:
            continue  # off (or not PostgreSQL): the server ends no session for it
        for definition in registry.definitions.all():  # (looked up now: tests swap it)
            for step in definition.steps:
                if isinstance(step, Step) and (step.timeout is None or step.timeout >= limit):
                    allowed = "no timeout" if step.timeout is None else f"a timeout of {step.timeout:g} s"
                    problems.append(
                        Warning(
                            f"step {step.name} of saga {definition.name} v{definition.version} has {allowed}, not "
                            f"below idle_in_transaction_session_timeout ({limit:g} s on the database {alias!r}): "
                            "the server would end its session mid-step",
                            hint="give the step a shorter timeout, or raise the sessions' idle timeout",
                            id="saga.W003",
                        )
                    )
    return problems


def _idle_in_transaction_timeout(alias: str) -> float:
    """The sessions' idle_in_transaction_session_timeout on `alias`, in seconds (0: off)."""
    connection = connections[alias]
    if connection.vendor != "postgresql":
        return 0.0
    with connection.cursor() as cursor:
        cursor.execute("SELECT setting::bigint FROM pg_settings WHERE name = 'idle_in_transaction_session_timeout'")
        return cursor.fetchone()[0] / 1000

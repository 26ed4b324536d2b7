"""`manage.py check` catches a misconfigured engine before anything runs."""

from typing import Any

from django.core.checks import CheckMessage, Warning, register

from .conf import saga_settings
from .messaging import catalog
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
    return problems

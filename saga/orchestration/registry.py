"""Saga definitions by (name, version). Contexts register theirs from their AppConfig.ready().

The rule: **a change to a definition's steps is a new version.** A saga keeps its progress as an
index into the steps of the version it started with, and finishes on that version: `saga_start`
starts the newest version, `definition_of` gives a running saga its own. So to add, remove, rename,
reorder or re-kind a step, register the changed definition as version N+1 and keep version N, as
it was, until its last saga has finished. (What a step does, its retry policy, timeout or
compensation may change under the same version: the indexes still mean the same steps.)

The rule is enforced, not only written here:
- in one process, `register` refuses a second definition under a (name, version) it holds;
- across deploys, where a process cannot see yesterday's code, the steps of each (name, version)
  (names and kinds, in order) are recorded in the database (`SagaDefinitionRecord`) the first time
  one of its sagas starts or moves; a process whose steps for it differ refuses to start or move
  its sagas (`DefinitionError`, the saga left untouched), and `manage.py check --database default`
  (which `migrate` runs first) names the difference before anything runs. The comparison costs a
  query or two once per definition per process, then nothing.
"""

from typing import Any

from django.core import checks
from django.db import connections, router, transaction

from .definition import DefinitionError, SagaDefinition, Wait
from .models import SagaDefinitionRecord

Steps = list[list[str]]  # [[name, kind], ...] as recorded: JSON, in order


def steps_of(definition: SagaDefinition) -> Steps:
    """What a saga's step index points into: each step's name and kind, in order."""
    return [[step.name, "wait" if isinstance(step, Wait) else str(step.kind)] for step in definition.steps]


class Registry:
    def __init__(self) -> None:
        self._definitions: dict[tuple[str, int], SagaDefinition] = {}
        # Definitions found to match their record, in a transaction that committed: never asked again.
        self._checked: dict[tuple[str, int], SagaDefinition] = {}

    def register(self, definition: SagaDefinition) -> SagaDefinition:
        known = self._definitions.get(definition.key)
        if known is not None and known is not definition:
            if steps_of(known) != steps_of(definition):
                raise DefinitionError(self._differ(definition, steps_of(known), "is already registered with"))
            raise DefinitionError(f"saga {definition.name} v{definition.version} is already registered")
        self._definitions[definition.key] = definition
        return definition

    def get(self, name: str, version: int) -> SagaDefinition:
        try:
            return self._definitions[(name, version)]
        except KeyError:
            raise DefinitionError(f"no saga {name} v{version} is registered") from None

    def latest(self, name: str) -> SagaDefinition:
        versions = [d for (n, _), d in self._definitions.items() if n == name]
        if not versions:
            raise DefinitionError(f"no saga named {name} is registered")
        return max(versions, key=lambda d: d.version)

    def all(self) -> list[SagaDefinition]:
        return list(self._definitions.values())

    def checked(self, definition: SagaDefinition) -> SagaDefinition:
        """`definition`, once its steps are known to be those recorded for its (name, version),
        recording them if none are; a `DefinitionError` if they differ. Called by the engine
        wherever it starts or moves a saga: after the first transaction that commits, it costs
        a dictionary look-up."""
        if self._checked.get(definition.key) is definition:
            return definition
        steps = steps_of(definition)
        recorded = _recorded_steps(definition, steps)
        if recorded != steps:
            raise DefinitionError(self._differ(definition, recorded, "has run with"))
        # Not before the commit: the record may be this transaction's own, and vanish with it.
        transaction.on_commit(lambda: self._checked.__setitem__(definition.key, definition))
        return definition

    def _differ(self, definition: SagaDefinition, steps: Steps, were: str) -> str:
        name, version = definition.key
        newest = max([v for (n, v) in self._definitions if n == name] + [version])
        return (
            f"saga {name} v{version} {were} the steps [{_describe(steps)}], but this code gives it "
            f"[{_describe(steps_of(definition))}]. A saga's progress is an index into its version's "
            f"steps, so changing them under v{version} would move sagas in flight onto the wrong steps: "
            f"give it a new version (v{newest + 1}) and keep v{version} as it was until its sagas have finished"
        )


def _describe(steps: Steps) -> str:
    return ", ".join(f"{name} ({kind})" for name, kind in steps)


def _recorded_steps(definition: SagaDefinition, steps: Steps) -> Steps:
    """The steps recorded for the definition's version: found, or recorded now as `steps` (by this
    transaction, or by a concurrent first one, which ON CONFLICT DO NOTHING waits for)."""
    records = SagaDefinitionRecord.objects.filter(type=definition.name, version=definition.version)
    recorded = records.values_list("steps", flat=True).first()
    if recorded is None:
        record = SagaDefinitionRecord(type=definition.name, version=definition.version, steps=steps)
        SagaDefinitionRecord.objects.bulk_create([record], ignore_conflicts=True)
        recorded = records.values_list("steps", flat=True).first()
        if recorded is None:  # only under an isolation level stricter than Django's default
            raise DefinitionError(f"saga {definition.name} v{definition.version}: its steps could not be recorded")
    return recorded


# The one registry of the process, filled at start-up (AppConfig.ready) and read-only afterwards.
definitions = Registry()


@checks.register(checks.Tags.database)
def definitions_check(app_configs: Any = None, databases: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Names each registered definition whose steps differ from those recorded for its version.
    A database check: it runs with `manage.py check --database default` and before `migrate`
    migrates, never at import; it only reads."""
    problems: list[checks.CheckMessage] = []
    for alias in databases or ():
        if not router.allow_migrate_model(alias, SagaDefinitionRecord):
            continue
        if SagaDefinitionRecord._meta.db_table not in connections[alias].introspection.table_names():
            continue  # not migrated yet: nothing is recorded
        records = SagaDefinitionRecord.objects.using(alias).values_list("type", "version", "steps")
        recorded = {(type_, version): steps for type_, version, steps in records}
        for definition in definitions.all():
            steps = recorded.get(definition.key)
            if steps is not None and steps != steps_of(definition):
                problems.append(checks.Error(definitions._differ(definition, steps, "has run with"), id="saga.E001"))
    return problems

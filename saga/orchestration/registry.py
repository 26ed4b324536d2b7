"""Saga definitions by (name, version). Contexts register theirs from their AppConfig.ready()."""
from .definition import DefinitionError, SagaDefinition


class Registry:
    def __init__(self) -> None:
        self._definitions: dict[tuple[str, int], SagaDefinition] = {}

    def register(self, definition: SagaDefinition) -> SagaDefinition:
        known = self._definitions.get(definition.key)
        if known is not None and known is not definition:
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


# The one registry of the process, filled at start-up (AppConfig.ready) and read-only afterwards.
definitions = Registry()

"""Saga definitions: a declarative, versioned list of steps.

A step is an action with an optional compensation, a kind (compensatable, pivot or retriable, as in
microservices.io's saga pattern), a retry policy and a timeout; or a wait for a named event with a
deadline. Definitions are validated when they are built, so a wrong one fails at start-up, not in
the middle of a customer's order.

A definition may name its data class (`SagaDefinition(..., data=OrderData)`): a class with
`from_data(dict)` and `to_data() -> dict` (see `SagaData`). Its functions then read the saga's data
typed, as `ctx.saga_data`, instead of string keys and conversions in every step:

    def reserve_stock(s: StepContext[OrderData]) -> Refusal | None:
        order = s.saga_data
        ...
"""

import enum
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Protocol, Self, TypeVar
from uuid import UUID, uuid5


class DefinitionError(ValueError):
    """A saga definition that cannot be run correctly."""


class StepKind(enum.StrEnum):
    COMPENSATABLE = "compensatable"  # may be undone by its compensation
    PIVOT = "pivot"  # the point of no return: after it, the saga only goes forward
    RETRIABLE = "retriable"  # after the pivot: retried until it succeeds


@dataclass(frozen=True)
class Refusal:
    """A participant's business "no" (out of stock, insufficient funds): compensate at once."""

    reason: str


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter. `max_attempts=None` retries for ever (after the pivot)."""

    max_attempts: int | None = 3
    initial_backoff: float = 0.2
    max_backoff: float = 60.0
    multiplier: float = 2.0
    jitter: float = 0.5
    transient: tuple[type[BaseException], ...] = (Exception,)

    def exhausted(self, attempts: int) -> bool:
        return self.max_attempts is not None and attempts >= self.max_attempts

    def backoff(self, attempts: int, rng: random.Random) -> float:
        base = min(self.max_backoff, self.initial_backoff * self.multiplier ** max(attempts - 1, 0))
        return base * (1 - self.jitter * rng.random())

    def is_transient(self, error: BaseException) -> bool:
        return isinstance(error, self.transient)


class SagaData(Protocol):
    """A saga's data as a class. It is stored as the JSON object `to_data` returns, beside keys of
    the engine's own (they start with `_`), which `from_data` must ignore."""

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self: ...

    def to_data(self) -> dict[str, Any]: ...


D = TypeVar("D", bound=SagaData)  # a definition's data class


@dataclass
class StepContext(Generic[D]):
    """What an action or compensation sees: the saga's data (changes are saved) and its ids."""

    saga_id: UUID
    request_id: UUID  # the HTTP request that started the saga (its own id when none did)
    data: dict[str, Any]
    now: datetime
    attempt: int = 1
    step: str = ""
    kind: str = "action"
    # The definition's data class (set by the engine from the definition).
    data_class: type[D] | None = None

    @property
    def saga_data(self) -> D:
        """`data` as the definition's data class. Built anew at each read, so it always shows
        `data` as it is; to change the saga's data, change `data`."""
        if self.data_class is None:
            raise DefinitionError("this saga's definition names no data class (SagaDefinition(data=...))")
        return self.data_class.from_data(self.data)

    def command_id(self, step: str, kind: str) -> UUID:
        """Deterministic, so a redelivered or replayed command is recognised by its participant."""
        return uuid5(self.saga_id, f"{step}:{kind}")


Action = Callable[[StepContext[D]], Refusal | None]
Compensation = Callable[[StepContext[D]], object]
Condition = Callable[[StepContext[D]], bool]


def always(_: StepContext[Any]) -> bool:
    return True


@dataclass(frozen=True)
class Step(Generic[D]):
    name: str
    action: Action[D]
    compensation: Compensation[D] | None = None
    kind: StepKind = StepKind.COMPENSATABLE
    retry: RetryPolicy = RetryPolicy()
    compensation_retry: RetryPolicy = RetryPolicy(max_attempts=10)
    timeout: float | None = 30.0
    when: Condition[D] = always
    # The reason the saga gives when this step fails for good by error rather than refusal.
    failure_reason: str = ""


@dataclass(frozen=True)
class Wait(Generic[D]):
    """Pause until `event` is signalled, at most `timeout(ctx)` seconds, then compensate."""

    name: str
    event: str
    timeout: Callable[[StepContext[D]], float]
    timeout_reason: str
    when: Condition[D] = always
    on_enter: Callable[[StepContext[D]], object] | None = None

    @property
    def failure_reason(self) -> str:
        return self.timeout_reason


AnyStep = Step[Any] | Wait[Any]


@dataclass(frozen=True)
class SagaDefinition(Generic[D]):
    name: str
    version: int
    steps: tuple[Step[D] | Wait[D], ...]
    # Called in the transaction of the saga's last compensation, with the reason it rolled back.
    on_compensated: Callable[[StepContext[D], str], object] | None = None
    # The whole saga must finish within this many seconds, or it is rolled back (before the
    # pivot) or flagged FAILED (after it).
    deadline: Callable[[StepContext[D]], float] | None = None
    # The class of the saga's data, which its functions read as `ctx.saga_data`.
    data: type[D] | None = None
    # The reason of a roll-back an operator asked for: the operator's decision, not a step's failure.
    operator_reason: str = "COMPENSATED_BY_OPERATOR"
    pivot_index: int = field(init=False)

    def __post_init__(self) -> None:
        _validate(self)
        pivots = [i for i, s in enumerate(self.steps) if getattr(s, "kind", None) == StepKind.PIVOT]
        object.__setattr__(self, "pivot_index", pivots[0] if pivots else len(self.steps))

    @property
    def key(self) -> tuple[str, int]:
        return self.name, self.version

    def step_named(self, name: str) -> int:
        for index, step in enumerate(self.steps):
            if step.name == name:
                return index
        raise DefinitionError(f"saga {self.name} v{self.version} has no step {name!r}")


def _validate(definition: SagaDefinition[Any]) -> None:
    problems: list[str] = []
    if not definition.steps:
        problems.append("it has no steps")
    names = [s.name for s in definition.steps]
    if len(set(names)) != len(names):
        problems.append(f"step names are not unique: {names}")
    pivots = [i for i, s in enumerate(definition.steps) if isinstance(s, Step) and s.kind == StepKind.PIVOT]
    if len(pivots) > 1:
        problems.append("it has more than one pivot")
    pivot = pivots[0] if pivots else len(definition.steps)
    for index, step in enumerate(definition.steps):
        problems.extend(_step_problems(step, before_pivot=index < pivot))
    if problems:
        raise DefinitionError(f"saga {definition.name} v{definition.version}: " + "; ".join(problems))


def _step_problems(step: AnyStep, *, before_pivot: bool) -> list[str]:
    problems: list[str] = []
    if before_pivot and not step.failure_reason:
        # Giving up on it rolls the saga back, and the saga must say why in the contract's words.
        field_name = "timeout_reason" if isinstance(step, Wait) else "failure_reason"
        problems.append(f"{step.name} comes before the pivot and has no {field_name}")
    if isinstance(step, Wait):
        if not before_pivot:
            problems.append(f"wait {step.name} comes after the pivot, where nothing can be undone")
        return problems
    if step.kind == StepKind.COMPENSATABLE and not before_pivot:
        problems.append(f"compensatable step {step.name} comes after the pivot")
    if step.kind == StepKind.RETRIABLE and before_pivot:
        problems.append(f"retriable step {step.name} comes before the pivot")
    if step.kind != StepKind.COMPENSATABLE and step.compensation is not None:
        problems.append(f"{step.kind} step {step.name} has a compensation")
    if step.timeout is not None and step.timeout <= 0:
        problems.append(f"step {step.name} has a timeout that is not positive")
    return problems

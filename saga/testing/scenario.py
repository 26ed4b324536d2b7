"""Given / expect tests of a saga definition, as Eventuate Tram's saga unit tests read: what the saga
is given (refusals, errors, hangs, replies, events, time, a cancel), then what it must show (the
attempts it made, in order, and where it stands).

    (given(PLACE_ORDER, saga_id=order.saga_id)
        .given_refusal("authorize_payment", "PAYMENT_DECLINED")
        .expect(
            succeeded("reserve_stock"),
            refused("authorize_payment", "PAYMENT_DECLINED"),
            compensated("authorize_payment"),
            compensated("reserve_stock"),
            status="COMPENSATED", reason="PAYMENT_DECLINED",
        ))

Givens take effect in the order they are written: faults wait for the step they are put into;
events, replies, cancels and time happen at once. `expect` then lets the saga run as far as it
can (over `SagaHarness.run`, so backoffs are skipped) and compares, exactly: the attempts written
or changed since the previous `expect`, then the saga's status and reason. A scenario is a layer
over `SagaHarness` (`scenario.harness`) and runs in the test's database transaction.
"""

from dataclasses import dataclass
from typing import Any, Self
from uuid import UUID

from saga.orchestration.definition import SagaData, SagaDefinition
from saga.orchestration.models import SagaInstance, SagaStep
from saga.testing.harness import SagaHarness

ACTION, COMPENSATION = SagaStep.Kind.ACTION, SagaStep.Kind.COMPENSATION


@dataclass(frozen=True)
class Attempt:
    """One attempt in a saga's history, as a test expects it: a step's action or compensation and
    its status; if given, its error exactly, a text its error contains, the command it sent."""

    step: str
    kind: str
    status: str
    error: str | None = None
    error_contains: str | None = None
    command: str | None = None

    def matches(self, row: SagaStep) -> bool:
        return (
            (row.name, row.kind, row.status) == (self.step, self.kind, self.status)
            and (self.error is None or row.error == self.error)
            and (self.error_contains is None or self.error_contains in row.error)
            and (self.command is None or (row.result or {}).get("command") == self.command)
        )

    def __str__(self) -> str:
        details = [f"error={self.error!r}"] if self.error is not None else []
        details += [f"error contains {self.error_contains!r}"] if self.error_contains is not None else []
        details += [f"command={self.command!r}"] if self.command is not None else []
        return " ".join([self.step, self.kind, self.status, *details])


def succeeded(step: str) -> Attempt:
    return Attempt(step, ACTION, SagaStep.Status.SUCCEEDED)


def refused(step: str, reason: str) -> Attempt:
    return Attempt(step, ACTION, SagaStep.Status.REFUSED, error=reason)


def failed(step: str, error: str | None = None) -> Attempt:
    """An action that raised (or timed out); `error`: a text its error contains."""
    return Attempt(step, ACTION, SagaStep.Status.FAILED, error_contains=error)


def skipped(step: str) -> Attempt:
    """A step whose `when` was false."""
    return Attempt(step, ACTION, SagaStep.Status.SKIPPED)


def waiting(step: str) -> Attempt:
    """A wait that has begun and not ended."""
    return Attempt(step, ACTION, SagaStep.Status.RUNNING)


def timed_out(step: str) -> Attempt:
    """A wait whose event did not come in time."""
    return Attempt(step, ACTION, SagaStep.Status.FAILED, error_contains="before the deadline")


def abandoned(step: str) -> Attempt:
    """An attempt cut short by a cancel, an operator or the saga's deadline."""
    return Attempt(step, ACTION, SagaStep.Status.ABANDONED)


def sent(step: str, command: str) -> Attempt:
    """An action that sent `command` to a remote participant and waits for its reply."""
    return Attempt(step, ACTION, SagaStep.Status.SENT, command=command)


def compensated(step: str) -> Attempt:
    return Attempt(step, COMPENSATION, SagaStep.Status.SUCCEEDED)


def compensation_failed(step: str, error: str | None = None) -> Attempt:
    return Attempt(step, COMPENSATION, SagaStep.Status.FAILED, error_contains=error)


def compensation_sent(step: str, command: str) -> Attempt:
    return Attempt(step, COMPENSATION, SagaStep.Status.SENT, command=command)


def given(
    definition: SagaDefinition[Any],
    *,
    saga_id: UUID | None = None,
    data: dict[str, Any] | SagaData | None = None,
    aggregate_id: UUID | None = None,
    harness: SagaHarness | None = None,
) -> "SagaScenario":
    """A scenario of a saga of `definition`: the one `saga_id` names (started by the code under
    test), or a new one started with `data`."""
    harness = harness or SagaHarness(definition)
    if saga_id is not None and data is None:
        return SagaScenario(harness, saga_id)
    if data is not None and saga_id is None:
        return SagaScenario(harness, harness.start(data=data, aggregate_id=aggregate_id))
    raise ValueError("give either saga_id (a saga already started) or data (to start one)")


class SagaScenario:
    def __init__(self, harness: SagaHarness, saga_id: UUID) -> None:
        self.harness = harness
        self.saga_id = saga_id
        self._shown: dict[int, tuple[str, str]] = {}  # attempt row id -> (status, error) last expected

    # --- given -----------------------------------------------------------------------------

    def given_refusal(self, step: str, reason: str, *, times: int = 1) -> Self:
        """The step's action refuses with `reason` (instead of running), `times` times."""
        self.harness.refuse_in(step, reason, times=times)
        return self

    def given_error(self, step: str, error: BaseException | None = None, *, times: int = 1) -> Self:
        """The step's action raises `error` (a transient one by default), `times` times."""
        self.harness.raise_in(step, error, times=times)
        return self

    def given_compensation_error(self, step: str, error: BaseException | None = None, *, times: int = 1) -> Self:
        """The step's compensation raises `error` (a transient one by default), `times` times."""
        self.harness.raise_in(step, error, times=times, kind=COMPENSATION)
        return self

    def given_hang(self, step: str, *, times: int = 1) -> Self:
        """The step's action runs past its timeout, `times` times."""
        self.harness.hang_in(step, times=times)
        return self

    def given_event(self, event: str, payload: dict[str, Any] | None = None) -> Self:
        """`event` arrives; the saga must take it (end its wait, or keep it for a wait ahead)."""
        __tracebackhide__ = True
        if not self.harness.signal(self.saga_id, event, payload):
            raise AssertionError(f"the saga refused {event}; {self._where()}")
        return self

    def given_reply(self, payload: dict[str, Any], *, ok: bool = True) -> Self:
        """The remote participant answers the command the saga sent last."""
        __tracebackhide__ = True
        if not self.harness.reply(self.saga_id, self.last_command_id(), payload, ok=ok):
            raise AssertionError(f"the saga refused the reply; {self._where()}")
        return self

    def given_time_passes(self, seconds: float) -> Self:
        self.harness.clock.advance(seconds)
        return self

    def given_cancel(self, reason: str) -> Self:
        """The saga is asked to roll back with `reason`; it must agree."""
        __tracebackhide__ = True
        if not self.harness.cancel(self.saga_id, reason):
            raise AssertionError(f"the saga refused to cancel; {self._where()}")
        return self

    # --- expect ----------------------------------------------------------------------------

    def expect(self, *attempts: Attempt, status: str, reason: str = "") -> Self:
        """Let the saga run, then compare the attempts written or changed since the previous
        `expect` (all of them, in order), its status, and its reason ("" when it has none)."""
        __tracebackhide__ = True  # pytest shows the test's line, not this one
        saga = self.harness.run(self.saga_id)
        rows = list(SagaStep.objects.filter(saga_id=self.saga_id).order_by("id"))
        news = [row for row in rows if self._shown.get(row.pk) != (row.status, row.error)]
        if len(news) != len(attempts) or not all(a.matches(row) for a, row in zip(attempts, news, strict=True)):
            raise AssertionError(_mismatch(attempts, news))
        if (saga.status, saga.reason) != (status, reason):
            raise AssertionError(
                f"expected the saga {status} with reason {reason!r}, found it {saga.status} with reason "
                f"{saga.reason!r} (error: {saga.error!r})"
            )
        self._shown = {row.pk: (row.status, row.error) for row in rows}
        return self

    def expect_event_refused(self, event: str, payload: dict[str, Any] | None = None) -> Self:
        """`event` arrives and the saga has no use for it (finished, rolling back, past its wait)."""
        __tracebackhide__ = True
        if self.harness.signal(self.saga_id, event, payload):
            raise AssertionError(f"the saga took {event}; {self._where()}")
        return self

    def expect_cancel_refused(self, reason: str) -> Self:
        """A cancel is refused (the saga is past its pivot, or finished)."""
        __tracebackhide__ = True
        if self.harness.cancel(self.saga_id, reason):
            raise AssertionError(f"the saga agreed to cancel; {self._where()}")
        return self

    # --- looking ---------------------------------------------------------------------------

    @property
    def saga(self) -> SagaInstance:
        """The saga as it is now (not run)."""
        return SagaInstance.objects.get(pk=self.saga_id)

    def last_command_id(self) -> UUID:
        """The id of the command the saga sent last to a remote participant."""
        sent_rows = SagaStep.objects.filter(saga_id=self.saga_id, status=SagaStep.Status.SENT).order_by("-id")
        result = sent_rows.values_list("result", flat=True).first()
        if not result:
            raise AssertionError(f"the saga sent no command; {self._where()}")
        return UUID(result["command_id"])

    def _where(self) -> str:
        saga = self.saga
        return f"it is {saga.status} at {saga.current_step or '-'} (reason {saga.reason!r}, error {saga.error!r})"


def _describe(row: SagaStep) -> str:
    command = (row.result or {}).get("command") if row.status == SagaStep.Status.SENT else None
    details = [f"error={row.error!r}"] if row.error else []
    details += [f"command={command!r}"] if command else []
    return " ".join([row.name, row.kind, row.status, *details])


def _mismatch(attempts: tuple[Attempt, ...], rows: list[SagaStep]) -> str:
    """Expected and shown attempts side by side, each row that differs marked with `!`."""
    width = max([len(str(a)) for a in attempts] + [len("expected")])
    lines = ["the saga showed other attempts than expected:", f"    {'expected':<{width}}   shown"]
    for index in range(max(len(attempts), len(rows))):
        attempt = attempts[index] if index < len(attempts) else None
        row = rows[index] if index < len(rows) else None
        same = attempt is not None and row is not None and attempt.matches(row)
        left, right = str(attempt or "-"), _describe(row) if row is not None else "-"
        lines.append(f"  {' ' if same else '!'} {left:<{width}}   {right}")
    return "\n".join(lines)


__all__ = [
    "ACTION",
    "COMPENSATION",
    "Attempt",
    "SagaScenario",
    "abandoned",
    "compensated",
    "compensation_failed",
    "compensation_sent",
    "failed",
    "given",
    "refused",
    "sent",
    "skipped",
    "succeeded",
    "timed_out",
    "waiting",
]

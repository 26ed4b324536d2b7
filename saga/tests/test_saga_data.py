"""A definition over a typed data class, and the given / expect layer, in a project without the shop."""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Self

import pytest

from saga.orchestration import Refusal, SagaDefinition, Step, StepContext, StepKind, Wait
from saga.orchestration.definition import DefinitionError
from saga.orchestration.registry import definitions
from saga.testing.scenario import Attempt, compensated, given, refused, skipped, succeeded, waiting


@dataclass(frozen=True)
class Parcel:
    parcel_id: uuid.UUID
    weight: Decimal
    fragile: bool

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Self:
        return cls(uuid.UUID(data["parcel_id"]), Decimal(data["weight"]), data["fragile"])

    def to_data(self) -> dict[str, Any]:
        return {"parcel_id": str(self.parcel_id), "weight": str(self.weight), "fragile": self.fragile}


calls: list[tuple[str, Any]] = []


def weigh(s: StepContext[Parcel]) -> Refusal | None:
    parcel = s.saga_data
    calls.append(("weigh", parcel))
    return Refusal("TOO_HEAVY") if parcel.weight > 10 else None


def unweigh(s: StepContext[Parcel]) -> None:
    calls.append(("unweigh", s.saga_data.parcel_id))


def is_fragile(s: StepContext[Parcel]) -> bool:
    return s.saga_data.fragile


def an_hour(s: StepContext[Parcel]) -> float:
    return 3600


def ship(s: StepContext[Parcel]) -> None:
    calls.append(("ship", s.saga_data.parcel_id))


def returned(s: StepContext[Parcel], reason: str) -> None:
    calls.append(("returned", reason))


def a_day_per_kilo(s: StepContext[Parcel]) -> float:
    return float(s.saga_data.weight) * 24 * 3600


PARCEL = definitions.register(
    SagaDefinition(
        name="parcel",
        version=1,
        data=Parcel,
        steps=(
            Step("weigh", weigh, compensation=unweigh, failure_reason="NOT_WEIGHED"),
            Wait("await_packing", event="packed", timeout=an_hour, timeout_reason="NOT_PACKED", when=is_fragile),
            Step("ship", ship, kind=StepKind.PIVOT),
        ),
        on_compensated=returned,
        deadline=a_day_per_kilo,
    )
)


@pytest.fixture(autouse=True)
def _seen(db):
    calls.clear()


def parcel(weight: str, *, fragile: bool = False) -> Parcel:
    return Parcel(uuid.uuid4(), Decimal(weight), fragile)


def test_every_function_reads_the_data_typed_and_the_saga_stores_it_as_json():
    light = parcel("2.5")
    scenario = given(PARCEL, data=light)
    # The deadline bounds the way to the pivot; past it, the saga has none.
    assert (scenario.saga.deadline - scenario.saga.created_at).total_seconds() == pytest.approx(2.5 * 86400, abs=5)
    scenario.expect(succeeded("weigh"), skipped("await_packing"), succeeded("ship"), status="COMPLETED")
    assert calls == [("weigh", light), ("ship", light.parcel_id)]
    assert scenario.saga.data == {"parcel_id": str(light.parcel_id), "weight": "2.5", "fragile": False}
    assert scenario.saga.deadline is None


def test_a_refusal_is_undone_and_the_hook_reads_the_data_too():
    given(PARCEL, data=parcel("11")).expect(
        refused("weigh", "TOO_HEAVY"), compensated("weigh"), status="COMPENSATED", reason="TOO_HEAVY"
    )
    assert [what for what, _ in calls] == ["weigh", "unweigh", "returned"]
    assert calls[-1] == ("returned", "TOO_HEAVY")


def test_the_engine_s_own_keys_beside_the_data_are_not_read_as_it():
    fragile = parcel("1", fragile=True)
    scenario = given(PARCEL, data=fragile).given_event("packed", {"by": "packer-3"})
    scenario.expect(succeeded("weigh"), succeeded("await_packing"), succeeded("ship"), status="COMPLETED")
    assert scenario.saga.data["_events"] == {"packed": {"by": "packer-3"}}
    assert calls == [("weigh", fragile), ("ship", fragile.parcel_id)]


def test_a_wait_given_time_times_out_and_rolls_back():
    scenario = given(PARCEL, data=parcel("1", fragile=True))
    scenario.expect(succeeded("weigh"), waiting("await_packing"), status="WAITING")
    scenario.given_time_passes(3599).expect(status="WAITING")
    scenario.given_time_passes(2).expect(
        Attempt("await_packing", "action", "FAILED", error="no packed before the deadline"),
        compensated("weigh"),
        status="COMPENSATED",
        reason="NOT_PACKED",
    )
    scenario.expect_event_refused("packed")


def test_a_definition_is_made_of_its_named_functions():
    assert [step.action for step in PARCEL.steps if isinstance(step, Step)] == [weigh, ship]
    assert PARCEL.on_compensated is returned


def test_a_context_without_a_data_class_says_so():
    ctx: StepContext[Any] = StepContext(saga_id=uuid.uuid4(), request_id=uuid.uuid4(), data={}, now=datetime.now(UTC))
    with pytest.raises(DefinitionError, match="names no data class"):
        _ = ctx.saga_data


def test_an_expectation_not_met_names_the_attempts_that_differ():
    scenario = given(PARCEL, data=parcel("11"))
    with pytest.raises(AssertionError) as failure:
        scenario.expect(refused("weigh", "TOO_LIGHT"), compensated("weigh"), status="COMPENSATED", reason="TOO_HEAVY")
    lines = str(failure.value).splitlines()
    assert lines[0] == "the saga showed other attempts than expected:"
    assert lines[2].startswith("  ! weigh action REFUSED error='TOO_LIGHT'")
    assert lines[2].endswith("weigh action REFUSED error='TOO_HEAVY'")
    assert lines[3].startswith("    weigh compensation SUCCEEDED")
    with pytest.raises(AssertionError, match="expected the saga COMPLETED with reason '', found it COMPENSATED"):
        given(PARCEL, data=parcel("12")).expect(refused("weigh", "TOO_HEAVY"), compensated("weigh"), status="COMPLETED")


def test_an_expectation_counts_every_attempt():
    with pytest.raises(AssertionError, match="other attempts"):
        given(PARCEL, data=parcel("1")).expect(succeeded("weigh"), succeeded("ship"), status="COMPLETED")


def test_a_given_the_saga_cannot_take_fails_the_test():
    scenario = given(PARCEL, data=parcel("1")).expect(
        succeeded("weigh"), skipped("await_packing"), succeeded("ship"), status="COMPLETED"
    )
    with pytest.raises(AssertionError, match="the saga refused packed; it is COMPLETED"):
        scenario.given_event("packed")
    with pytest.raises(AssertionError, match="the saga refused to cancel"):
        scenario.given_cancel("CHANGED_MIND")
    with pytest.raises(AssertionError, match="the saga sent no command"):
        scenario.given_reply({})

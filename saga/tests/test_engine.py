"""The engine on toy definitions: retries, compensation order, crashes, deadlines, versions."""

import time
import uuid

import pytest

from saga.models import SagaInstance, SagaStatus, SagaStep
from saga.orchestration import engine
from saga.orchestration.definition import DefinitionError, RetryPolicy, SagaDefinition, Step, StepKind, Wait
from saga.orchestration.registry import definitions
from saga.testing.harness import SagaHarness

LOG: list[str] = []


class Permanent(Exception):
    """Not in the toy steps' transient errors."""


def act(name):
    def action(s):
        LOG.append(f"do {name}")
        s.data.setdefault("done", []).append(name)

    return action


def undo(name):
    return lambda s: LOG.append(f"undo {name}")


def sleepy(s):
    time.sleep(2)


TRANSIENT = RetryPolicy(max_attempts=3, initial_backoff=1, transient=(RuntimeError,))
TOY = definitions.register(
    SagaDefinition(
        name="toy",
        version=1,
        steps=(
            Step("a", act("a"), compensation=undo("a"), retry=TRANSIENT, failure_reason="A_FAILED"),
            Step(
                "b",
                act("b"),
                compensation=undo("b"),
                retry=TRANSIENT,
                failure_reason="B_FAILED",
                compensation_retry=RetryPolicy(max_attempts=4, initial_backoff=1),
            ),
            Wait(
                "w",
                event="go",
                timeout=lambda s: 100,
                timeout_reason="TOO_SLOW",
                when=lambda s: s.data.get("wait", False),
            ),
            Step("pivot", act("pivot"), kind=StepKind.PIVOT),
            Step(
                "after", act("after"), kind=StepKind.RETRIABLE, retry=RetryPolicy(max_attempts=None, initial_backoff=1)
            ),
        ),
        deadline=lambda s: s.data.get("deadline", 10_000),
    )
)
TOY_V2 = definitions.register(
    SagaDefinition(name="toy", version=2, steps=(Step("only", act("only"), failure_reason="ONLY_FAILED"),))
)


def exploding_condition(s):
    raise ValueError("hook exploded")


HOOKED = definitions.register(
    SagaDefinition(
        name="hooked", version=1, steps=(Step("x", act("x"), when=exploding_condition, failure_reason="X_FAILED"),)
    )
)
SLOW = definitions.register(
    SagaDefinition(
        name="slow",
        version=1,
        steps=(
            Step(
                "sleepy",
                sleepy,
                timeout=0.2,
                retry=RetryPolicy(max_attempts=2, initial_backoff=0.01),
                failure_reason="TOO_SLOW",
            ),
        ),
    )
)


@pytest.fixture
def toy(db):
    LOG.clear()
    return SagaHarness(TOY)


def test_happy_path_runs_every_step_once(toy):
    saga = toy.run(toy.start(data={}))
    assert saga.status == SagaStatus.COMPLETED and saga.current_step == ""
    assert LOG == ["do a", "do b", "do pivot", "do after"]
    assert saga.data["done"] == ["a", "b", "pivot", "after"]
    assert toy.steps(saga.id)[2] == ("w", "action", "SKIPPED")


def test_transient_errors_are_retried_with_growing_backoff(toy):
    toy.raise_in("b", RuntimeError("glitch"), times=2)
    saga_id = toy.start(data={})
    engine.advance(saga_id, toy.runtime)
    first = SagaInstance.objects.get(pk=saga_id).retry_at - toy.clock.now()
    toy.clock.advance(first.total_seconds())
    engine.advance(saga_id, toy.runtime)
    second = SagaInstance.objects.get(pk=saga_id).retry_at - toy.clock.now()
    assert second > first
    saga = toy.run(saga_id)
    assert saga.status == SagaStatus.COMPLETED
    b_rows = [s for n, k, s in toy.steps(saga_id) if n == "b"]
    assert b_rows == ["FAILED", "FAILED", "SUCCEEDED"]
    assert LOG.count("do b") == 1


def test_retries_exhausted_compensate_in_reverse_order(toy):
    toy.raise_in("b", RuntimeError("down"), times=3)
    saga = toy.run(toy.start(data={}))
    assert (saga.status, saga.reason) == (SagaStatus.COMPENSATED, "B_FAILED")
    assert LOG == ["do a", "undo b", "undo a"]


def test_an_error_that_is_not_transient_compensates_at_once(toy):
    toy.raise_in("a", Permanent("bad data"))
    saga = toy.run(toy.start(data={}))
    assert saga.status == SagaStatus.COMPENSATED
    assert [s for n, k, s in toy.steps(saga.id) if (n, k) == ("a", "action")] == ["FAILED"]


def test_refusal_compensates_the_refusing_step_and_those_before(toy):
    toy.refuse_in("b", "NO")
    saga = toy.run(toy.start(data={}))
    assert (saga.status, saga.reason) == (SagaStatus.COMPENSATED, "NO")
    assert LOG == ["do a", "undo b", "undo a"]
    assert ("b", "action", "REFUSED") in toy.steps(saga.id)


def test_a_compensation_that_fails_three_times_then_succeeds(toy):
    toy.refuse_in("b", "NO")
    toy.raise_in("b", RuntimeError("undo glitch"), times=3, kind="compensation")
    saga = toy.run(toy.start(data={}))
    assert saga.status == SagaStatus.COMPENSATED
    assert [s for n, k, s in toy.steps(saga.id) if (n, k) == ("b", "compensation")] == ["FAILED"] * 3 + ["SUCCEEDED"]
    assert LOG == ["do a", "undo b", "undo a"]


def test_a_compensation_that_gives_up_fails_the_saga_until_an_operator_retries(toy):
    toy.refuse_in("b", "NO")
    toy.raise_in("b", RuntimeError("undo down"), times=4, kind="compensation")
    saga = toy.run(toy.start(data={}))
    assert saga.status == SagaStatus.FAILED and "undo down" in saga.error and saga.current_step == "b"
    assert LOG == ["do a"]
    engine.retry(saga.id, toy.runtime)
    assert toy.run(saga.id).status == SagaStatus.COMPENSATED
    assert LOG == ["do a", "undo b", "undo a"]


def test_after_the_pivot_a_failing_step_is_retried_until_it_succeeds(toy):
    toy.raise_in("after", RuntimeError("capture glitch"), times=7)
    saga = toy.run(toy.start(data={}))
    assert saga.status == SagaStatus.COMPLETED
    assert "undo a" not in LOG


def test_a_hanging_step_times_out_and_is_retried(toy):
    toy.hang_in("a")
    saga = toy.run(toy.start(data={}))
    assert saga.status == SagaStatus.COMPLETED
    assert [s for n, k, s in toy.steps(saga.id) if n == "a"] == ["FAILED", "SUCCEEDED"]


def test_a_real_hang_is_cut_by_the_step_timeout(db):
    harness = SagaHarness(SLOW)
    started = time.monotonic()
    saga = harness.run(harness.start(data={}))
    assert saga.status == SagaStatus.COMPENSATED
    assert "longer than 0.2 s" in SagaStep.objects.filter(saga=saga).first().error
    assert time.monotonic() - started < 2  # two attempts were cut, not slept through


def test_a_worker_that_died_mid_step_is_detected_and_the_step_runs_again(toy):
    saga_id = toy.start(data={})
    die_mid_step(toy, saga_id)
    saga = toy.run(saga_id)
    assert saga.status == SagaStatus.COMPLETED
    assert [s for n, k, s in toy.steps(saga_id) if n == "a"] == ["CRASHED", "SUCCEEDED"]
    assert LOG.count("do a") == 1


def die_mid_step(harness: SagaHarness, saga_id) -> None:
    """Claim the next attempt, as a worker would, and never run it: the worker died."""
    while not isinstance(engine.advancing.claim(saga_id, harness.runtime), engine.Claim):
        retry_at = SagaInstance.objects.get(pk=saga_id).retry_at
        harness.clock.advance((retry_at - harness.clock.now()).total_seconds())


def test_a_step_that_kills_every_worker_is_given_up_on(toy):
    saga_id = toy.start(data={})
    for _ in range(3):
        die_mid_step(toy, saga_id)
    saga = toy.run(saga_id)
    assert (saga.status, saga.reason) == (SagaStatus.COMPENSATED, "A_FAILED")
    assert "died 3 times" in saga.error


def test_a_crash_loop_after_the_pivot_stops_for_an_operator(toy):
    toy.raise_in("after", RuntimeError("down"), times=1)
    saga_id = toy.start(data={})
    engine.advance(saga_id, toy.runtime)
    for _ in range(engine.MAX_CRASHES):
        die_mid_step(toy, saga_id)
    saga = toy.run(saga_id)
    assert saga.status == SagaStatus.FAILED and f"died {engine.MAX_CRASHES} times" in saga.error
    assert "undo a" not in LOG


def test_past_the_pivot_the_deadline_no_longer_applies(toy):
    toy.raise_in("after", RuntimeError("down"), times=3)
    saga_id = toy.start(data={"deadline": 50})
    engine.advance(saga_id, toy.runtime)
    assert SagaInstance.objects.get(pk=saga_id).deadline is None
    toy.clock.advance(51)
    saga = toy.run(saga_id)
    assert saga.status == SagaStatus.COMPLETED and saga.deadline is None


def test_replay_cannot_go_back_across_the_pivot(toy):
    toy.raise_in("after", RuntimeError("down"), times=1000)
    saga_id = toy.start(data={})
    engine.advance(saga_id, toy.runtime)
    with pytest.raises(engine.SagaStateConflict, match="passed its pivot"):
        engine.rewind(saga_id, "a", toy.runtime)
    engine.rewind(saga_id, "after", toy.runtime)  # forward of the pivot is fine


def test_a_failing_hook_is_recorded_retried_and_finally_fails_the_saga(db):
    harness = SagaHarness(HOOKED)
    saga_id = harness.start(data={})
    for _ in range(engine.MAX_HOOK_FAILURES):
        harness.run(saga_id)
        saga = SagaInstance.objects.get(pk=saga_id)
        if saga.retry_at:
            harness.clock.advance((saga.retry_at - harness.clock.now()).total_seconds())
    saga = SagaInstance.objects.get(pk=saga_id)
    assert saga.status == SagaStatus.FAILED and "hook exploded" in saga.error


def test_wait_times_out_and_compensates(toy):
    saga_id = toy.start(data={"wait": True})
    assert toy.run(saga_id).status == SagaStatus.WAITING
    toy.clock.advance(101)
    saga = toy.run(saga_id)
    assert (saga.status, saga.reason) == (SagaStatus.COMPENSATED, "TOO_SLOW")
    assert LOG == ["do a", "do b", "undo b", "undo a"]


def test_an_event_that_arrives_before_its_wait_is_kept(toy):
    saga_id = toy.start(data={"wait": True})
    assert toy.signal(saga_id, "go", {"by": "courier-7"})
    saga = toy.run(saga_id)
    assert saga.status == SagaStatus.COMPLETED
    assert not toy.signal(saga_id, "go")


def test_deadline_before_the_pivot_compensates(toy):
    saga_id = toy.start(data={"wait": True, "deadline": 50})
    toy.run(saga_id)
    toy.clock.advance(51)
    saga = toy.run(saga_id)
    assert (saga.status, saga.reason, saga.error) == (SagaStatus.COMPENSATED, "TOO_SLOW", "the saga's deadline passed")


def test_a_step_failing_long_after_the_deadline_past_the_pivot_is_retried_not_failed(toy):
    toy.raise_in("after", RuntimeError("down"), times=20)
    saga_id = toy.start(data={"deadline": 50})
    engine.advance(saga_id, toy.runtime)
    toy.clock.advance(10_000)
    saga = toy.run(saga_id)
    assert saga.status == SagaStatus.COMPLETED
    assert LOG == ["do a", "do b", "do pivot", "do after"]


def test_giving_up_at_the_pivot_stops_for_an_operator_with_no_reason_invented(toy):
    toy.raise_in("pivot", RuntimeError("constraint violated"), times=3)  # its policy: 3 attempts
    saga = toy.run(toy.start(data={}))
    assert (saga.status, saga.reason, saga.current_step) == (SagaStatus.FAILED, "", "pivot")
    assert "undo a" not in LOG


def test_operator_compensate_is_refused_after_the_pivot(toy):
    toy.raise_in("after", RuntimeError("down"), times=1000)
    saga_id = toy.start(data={})
    engine.advance(saga_id, toy.runtime)
    with pytest.raises(engine.SagaStateConflict):
        engine.compensate(saga_id, toy.runtime)


def test_a_saga_keeps_the_version_it_started_with(toy):
    saga = toy.run(toy.start(data={}))
    assert (saga.type, saga.version) == ("toy", 1)
    assert definitions.latest("toy") is TOY_V2
    assert engine.definition_of(saga) is TOY


def test_every_wake_up_is_scheduled(toy):
    toy.raise_in("a", RuntimeError("glitch"))
    saga_id = toy.start(data={})
    engine.advance(saga_id, toy.runtime)
    assert toy.scheduled[0] == (saga_id, 0)
    assert toy.scheduled[1][0] == saga_id and 0 < toy.scheduled[1][1] <= 1


@pytest.mark.parametrize(
    ("steps", "problem"),
    [
        ((), "no steps"),
        ((Step("x", act("x")), Step("x", act("x"))), "not unique"),
        ((Step("p", act("p"), kind=StepKind.PIVOT), Step("c", act("c"), compensation=undo("c"))), "after the pivot"),
        ((Step("p", act("p"), kind=StepKind.PIVOT), Wait("w", "e", lambda s: 1, "R")), "after the pivot"),
        ((Step("p", act("p"), kind=StepKind.PIVOT), Step("q", act("q"), kind=StepKind.PIVOT)), "more than one pivot"),
        ((Step("r", act("r"), kind=StepKind.RETRIABLE),), "before the pivot"),
        ((Step("p", act("p"), kind=StepKind.PIVOT, compensation=undo("p")),), "has a compensation"),
        ((Step("c", act("c"), compensation=undo("c")), Step("p", act("p"), kind=StepKind.PIVOT)), "no failure_reason"),
        ((Wait("w", "e", lambda s: 1, ""), Step("p", act("p"), kind=StepKind.PIVOT)), "no timeout_reason"),
    ],
)
def test_wrong_definitions_are_refused_when_built(steps, problem):
    with pytest.raises(DefinitionError, match=problem):
        SagaDefinition(name=f"bad-{uuid.uuid4()}", version=1, steps=steps)


def test_registering_another_definition_under_a_taken_version_is_refused():
    with pytest.raises(DefinitionError, match="already registered"):
        definitions.register(SagaDefinition(name="toy", version=1, steps=(Step("z", act("z"), failure_reason="Z"),)))

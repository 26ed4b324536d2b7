"""Definitions evolve safely: a saga's progress is an index into its version's steps, so the steps
of a (name, version) never change once its sagas have run. A change of steps is a new version;
sagas in flight finish on the version they started with."""

import uuid

import pytest
from django.core import checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from saga import services
from saga.orchestration import engine, registry
from saga.orchestration.definition import DefinitionError, SagaDefinition, Step, StepKind, Wait
from saga.orchestration.models import SagaDefinitionRecord, SagaInstance, SagaStatus
from saga.orchestration.registry import Registry
from saga.testing.harness import SagaHarness


def step(name: str, **options) -> Step:
    def action(ctx):
        ctx.data.setdefault("done", []).append(name)

    if options.get("kind", StepKind.COMPENSATABLE) == StepKind.COMPENSATABLE:
        options.setdefault("compensation", lambda ctx: None)
        options.setdefault("failure_reason", f"{name.upper()}_FAILED")
    return Step(name, action, **options)


def wait(name: str, event: str) -> Wait:
    return Wait(name, event=event, timeout=lambda ctx: 3600, timeout_reason="TOO_SLOW")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def deploy(monkeypatch, *definitions: SagaDefinition) -> Registry:
    """A process running this code: a registry of its own, as a fresh process starts with."""
    fresh = Registry()
    for definition in definitions:
        fresh.register(definition)
    monkeypatch.setattr(engine.steps, "definitions", fresh)
    monkeypatch.setattr(registry, "definitions", fresh)  # what `manage.py check` looks at
    return fresh


class Abort(Exception):
    """The caller's transaction fails."""


def record_queries(queries: CaptureQueriesContext) -> list[str]:
    table = SagaDefinitionRecord._meta.db_table
    return [query["sql"] for query in queries.captured_queries if table in query["sql"]]


# --- across deploys ------------------------------------------------------------------------


def test_steps_changed_under_the_same_version_are_refused_across_deploys(db, monkeypatch):
    name = unique("ship")
    # Yesterday's code: v1 is [a, b, c], and a saga of it waits at b.
    yesterday = SagaDefinition(name=name, version=1, steps=(step("a"), wait("b", "go"), step("c")))
    deploy(monkeypatch, yesterday)
    old = SagaHarness(yesterday)
    saga_id = old.start(data={})
    assert old.run(saga_id).status == SagaStatus.WAITING

    # Today's code says v1 is [a, x, b, c]: index 1 would now mean x, not the wait b.
    today = SagaDefinition(name=name, version=1, steps=(step("a"), step("x"), wait("b", "go"), step("c")))
    deploy(monkeypatch, today)
    new = SagaHarness(today)
    with pytest.raises(DefinitionError) as refused:
        new.start(data={})
    message = str(refused.value)
    assert name in message and "v1" in message and "give it a new version (v2)" in message
    assert "[a (compensatable), b (wait), c (compensatable)]" in message  # the recorded steps
    assert "[a (compensatable), x (compensatable), b (wait), c (compensatable)]" in message  # the new ones
    assert SagaInstance.objects.filter(type=name).count() == 1  # nothing started

    # Nor does today's process move yesterday's saga on the wrong steps: it leaves it as it is.
    with pytest.raises(DefinitionError, match="give it a new version"):
        new.signal(saga_id, "go")
    new.clock.advance(7200)  # even once its wait has expired
    with pytest.raises(DefinitionError, match="give it a new version"):
        engine.advance(saga_id, new.runtime)
    saga = SagaInstance.objects.get(pk=saga_id)
    # As it was left: waiting at b, its first attempt.
    assert (saga.status, saga.step_index, saga.current_step, saga.attempts) == (SagaStatus.WAITING, 1, "b", 1)
    assert saga.error == ""
    assert new.steps(saga_id) == [("a", "action", "SUCCEEDED"), ("b", "action", "RUNNING")]
    assert "x" not in saga.data["done"]

    # The fix the message asks for: the change is v2, and v1 stays as it was. Yesterday's saga
    # finishes on v1's steps (its wait expired meanwhile, so it rolls back; x never runs); new
    # sagas run v2's.
    fixed = SagaDefinition(name=name, version=2, steps=today.steps)
    deploy(monkeypatch, yesterday, fixed)
    assert new.signal(saga_id, "go") is False  # past the wait's deadline
    saga = new.run(saga_id)
    assert (saga.status, saga.version, saga.reason, saga.data["done"]) == (SagaStatus.COMPENSATED, 1, "TOO_SLOW", ["a"])
    newer = SagaHarness(fixed)
    newer_id = newer.start(data={})
    newer.run(newer_id)
    newer.signal(newer_id, "go")
    assert newer.run(newer_id).data["done"] == ["a", "x", "c"]


@pytest.mark.parametrize(
    ("change", "today"),
    [
        ("a step added", (step("a"), step("b"), step("c"))),
        ("a step removed", (step("a"),)),
        ("a step renamed", (step("a"), step("b2"))),
        ("steps reordered", (step("b"), step("a"))),
        ("a step's kind changed", (step("a"), step("b", kind=StepKind.PIVOT))),
        ("a step become a wait", (step("a"), wait("b", "go"))),
    ],
)
def test_every_change_of_steps_under_the_same_version_is_refused(db, monkeypatch, change, today):
    name = unique("ship")
    yesterday = SagaDefinition(name=name, version=1, steps=(step("a"), step("b")))
    deploy(monkeypatch, yesterday)
    SagaHarness(yesterday).start(data={})

    changed = SagaDefinition(name=name, version=1, steps=today)
    deploy(monkeypatch, changed)
    with pytest.raises(DefinitionError, match="give it a new version"):
        SagaHarness(changed).start(data={})
    assert SagaInstance.objects.filter(type=name).count() == 1


def test_a_change_that_keeps_the_steps_needs_no_new_version(db, monkeypatch):
    """What a step does, its retry policy, timeout or compensation are not its place in the saga."""
    name = unique("ship")
    yesterday = SagaDefinition(name=name, version=1, steps=(step("a"), wait("b", "go"), step("c")))
    deploy(monkeypatch, yesterday)
    harness = SagaHarness(yesterday)
    saga_id = harness.start(data={})
    harness.run(saga_id)

    def c_done_differently(ctx):
        ctx.data.setdefault("done", []).append("c, differently")

    today = SagaDefinition(
        name=name,
        version=1,
        steps=(
            step("a", timeout=5.0),
            wait("b", "go"),
            Step("c", c_done_differently, compensation=None, failure_reason="C_FAILED"),
        ),
    )
    deploy(monkeypatch, today)
    assert harness.signal(saga_id, "go") is True
    assert harness.run(saga_id).data["done"] == ["a", "c, differently"]
    assert SagaHarness(today).start(data={})
    assert SagaInstance.objects.filter(type=name).count() == 2


def test_each_version_records_its_own_steps(db):
    name = unique("ship")
    v1 = SagaDefinition(name=name, version=1, steps=(step("a"), step("b")))
    v2 = SagaDefinition(name=name, version=2, steps=(step("a"), step("x"), step("b")))
    SagaHarness(v1).start(data={})
    SagaHarness(v2).start(data={})
    SagaHarness(v1).start(data={})
    recorded = SagaDefinitionRecord.objects.filter(type=name).order_by("version").values_list("version", "steps")
    assert list(recorded) == [
        (1, [["a", "compensatable"], ["b", "compensatable"]]),
        (2, [["a", "compensatable"], ["x", "compensatable"], ["b", "compensatable"]]),
    ]


# --- in one process ----------------------------------------------------------------------------


def test_registering_other_steps_under_a_taken_version_is_refused():
    name = unique("ship")
    definitions = Registry()
    v1 = definitions.register(SagaDefinition(name=name, version=1, steps=(step("a"), step("b"))))
    definitions.register(SagaDefinition(name=name, version=2, steps=(step("a"), step("x"), step("b"))))

    with pytest.raises(DefinitionError) as refused:
        definitions.register(SagaDefinition(name=name, version=1, steps=(step("a"), step("y"), step("b"))))
    message = str(refused.value)
    assert f"saga {name} v1 is already registered with the steps [a (compensatable), b (compensatable)]" in message
    assert "[a (compensatable), y (compensatable), b (compensatable)]" in message
    assert "give it a new version (v3)" in message  # v2 is taken
    with pytest.raises(DefinitionError, match="already registered"):  # even with the same steps: which would run?
        definitions.register(SagaDefinition(name=name, version=1, steps=(step("a"), step("b"))))
    assert definitions.get(name, 1) is v1
    assert definitions.register(v1) is v1  # registering the same definition again is harmless


# --- in flight -----------------------------------------------------------------------------


def test_sagas_in_flight_finish_on_the_version_they_started_with(db):
    name = unique("ship")
    v1 = SagaDefinition(name=name, version=1, steps=(step("a"), wait("w", "go"), step("b")))
    harness = SagaHarness(services.saga_register(v1))
    waiting = services.saga_start(name=name, aggregate_id=uuid.uuid4(), data={}, runtime=harness.runtime)
    assert harness.run(waiting.id).status == SagaStatus.WAITING  # paused at its wait
    harness.raise_in("a", RuntimeError("glitch"))
    backing_off = services.saga_start(name=name, aggregate_id=uuid.uuid4(), data={}, runtime=harness.runtime)
    engine.advance(backing_off.id, harness.runtime)  # mid-way: a failed once, retried later
    assert SagaInstance.objects.get(pk=backing_off.id).retry_at is not None

    # The next deploy adds step x between w and b: a new version; v1 stays registered.
    v2 = SagaDefinition(name=name, version=2, steps=(step("a"), wait("w", "go"), step("x"), step("b")))
    services.saga_register(v2)
    newer = services.saga_start(name=name, aggregate_id=uuid.uuid4(), data={}, runtime=harness.runtime)
    assert newer.version == 2

    assert harness.signal(waiting.id, "go") is True
    harness.signal(backing_off.id, "go")
    for saga_id in (waiting.id, backing_off.id):
        saga = harness.run(saga_id)
        assert (saga.status, saga.version, saga.data["done"]) == (SagaStatus.COMPLETED, 1, ["a", "b"])
        assert [name for name, _, status in harness.steps(saga_id) if status == "SUCCEEDED"] == ["a", "w", "b"]
    harness.run(newer.id)
    harness.signal(newer.id, "go")
    saga = harness.run(newer.id)
    assert (saga.status, saga.version, saga.data["done"]) == (SagaStatus.COMPLETED, 2, ["a", "x", "b"])


# --- cost ----------------------------------------------------------------------------------


def test_the_steps_are_looked_up_once_per_process_after_a_commit(db, django_capture_on_commit_callbacks):
    name = unique("ship")
    definition = services.saga_register(SagaDefinition(name=name, version=1, steps=(step("a"), step("b"))))
    harness = SagaHarness(definition)
    with django_capture_on_commit_callbacks(execute=True), CaptureQueriesContext(connection) as first:
        harness.run(harness.start(data={}))
    assert record_queries(first)  # looked up (and recorded) the first time

    with CaptureQueriesContext(connection) as later:
        saga = harness.run(harness.start(data={}))
    assert saga.status == SagaStatus.COMPLETED
    assert record_queries(later) == []  # then never again: neither to start nor to move a saga


def test_a_record_that_rolled_back_is_looked_up_again(db, django_capture_on_commit_callbacks):
    name = unique("ship")
    definition = services.saga_register(SagaDefinition(name=name, version=1, steps=(step("a"),)))
    harness = SagaHarness(definition)

    def start_in_a_transaction_that_fails() -> None:
        with transaction.atomic():
            harness.start(data={})
            raise Abort  # the caller's transaction fails: its saga and the record it wrote are gone

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(Abort):
        start_in_a_transaction_that_fails()
    assert not SagaDefinitionRecord.objects.filter(type=name).exists()

    with CaptureQueriesContext(connection) as again:
        harness.start(data={})
    assert record_queries(again)
    assert SagaDefinitionRecord.objects.filter(type=name).count() == 1


# --- manage.py check -----------------------------------------------------------------------


def test_manage_py_check_names_a_definition_whose_steps_differ_from_the_record(db, monkeypatch):
    name = unique("ship")
    SagaDefinitionRecord.objects.create(type=name, version=1, steps=[["a", "compensatable"], ["b", "wait"]])
    deploy(monkeypatch, SagaDefinition(name=name, version=1, steps=(step("a"), step("x"), wait("b", "go"))))

    with pytest.raises(SystemCheckError) as failed:
        call_command("check", databases=["default"])
    message = str(failed.value)
    assert "saga.E001" in message and f"saga {name} v1 has run with the steps [a (compensatable), b (wait)]" in message
    assert "give it a new version (v2)" in message
    call_command("check")  # without a database it looks at none, so start-up never touches one

    deploy(monkeypatch, SagaDefinition(name=name, version=1, steps=(step("a"), wait("b", "go"))))
    call_command("check", databases=["default"])  # the same steps: nothing to say


def test_manage_py_check_warns_of_a_step_the_servers_idle_timeout_would_end(db, monkeypatch):
    """A step runs inside its transaction: PostgreSQL sees the session idle in it while the step waits."""
    name = unique("slow")
    deploy(
        monkeypatch,
        SagaDefinition(
            name=name,
            version=1,
            steps=(step("quick", timeout=10), step("slow", timeout=120), step("open", timeout=None)),
        ),
    )
    with connection.cursor() as cursor:  # the sessions' setting (the test's transaction takes it back)
        cursor.execute("SET idle_in_transaction_session_timeout = '2min'")
    warnings = [problem for problem in checks.run_checks(databases=["default"]) if problem.id == "saga.W003"]
    slow, open_ended = (str(warning.msg) for warning in warnings)
    assert slow.startswith(f"step slow of saga {name} v1 has a timeout of 120 s, not below ")
    assert "idle_in_transaction_session_timeout (120 s on the database 'default')" in slow
    assert open_ended.startswith(f"step open of saga {name} v1 has no timeout")
    assert not [problem for problem in checks.run_checks() if problem.id == "saga.W003"]  # no database: no look

    with connection.cursor() as cursor:
        cursor.execute("SET idle_in_transaction_session_timeout = 0")  # off: the server ends no session for it
    assert not [problem for problem in checks.run_checks(databases=["default"]) if problem.id == "saga.W003"]

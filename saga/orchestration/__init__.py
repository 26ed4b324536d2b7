"""Orchestration: saga definitions, their durable execution (engine, runtime, timers, recovery),
participants, the test harness and injected faults. It may use messaging; never the reverse.

A definition is written with what this module exports."""

from .definition import Refusal, RetryPolicy, SagaDefinition, Step, StepContext, StepKind, Wait

__all__ = ["Refusal", "RetryPolicy", "SagaDefinition", "Step", "StepContext", "StepKind", "Wait"]

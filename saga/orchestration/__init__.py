"""Orchestration: saga definitions, their durable execution (engine, runtime, timers, recovery),
participants and their per-aggregate records (records). It may use messaging; never the reverse.
Its testing support is saga.testing.

A definition is written with what this module exports."""

from .definition import Refusal, RetryPolicy, SagaDefinition, Step, StepContext, StepKind, Wait

__all__ = ["Refusal", "RetryPolicy", "SagaDefinition", "Step", "StepContext", "StepKind", "Wait"]

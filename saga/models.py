"""The saga app's models, one Django app whatever sub-package defines them (their app label is
`saga`, so the migrations stay where they are)."""

from .messaging.models import DeadLetter, InboxMessage, OutboxMessage
from .orchestration.models import (
    ACTIVE,
    TERMINAL,
    Direction,
    OperatorAction,
    ProcessedCommand,
    SagaInstance,
    SagaStatus,
    SagaStep,
)

__all__ = [
    "ACTIVE",
    "TERMINAL",
    "DeadLetter",
    "Direction",
    "InboxMessage",
    "OperatorAction",
    "OutboxMessage",
    "ProcessedCommand",
    "SagaInstance",
    "SagaStatus",
    "SagaStep",
]

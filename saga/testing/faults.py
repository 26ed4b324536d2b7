"""Faults configured from the environment, injected into steps of a real worker (crash tests,
`make chaos`). Off unless SAGA_FAULTS is set, e.g.

    SAGA_FAULTS='{"authorize_payment": {"delay": 0.5}, "reserve_stock:compensation": {"fail_attempts": 3}}'

- delay: seconds to sleep before the step runs (a slow participant; a window to kill a worker in)
- fail_attempts: the first N attempts raise a transient error (decided per saga, by attempt
  number, so every worker process agrees)
- error_rate: probability that an attempt raises a transient error
- exit_attempts: the first N attempts end the worker's process at once, as a step that crashes
  its worker would (a segfault, the out-of-memory killer)
"""

import json
import os
import random
import time

from saga.orchestration.definition import Refusal, StepContext


class InjectedFault(RuntimeError):
    """A transient error put into a step on purpose."""


class ConfiguredFaults:
    def __init__(self, spec: dict[str, dict], rng: random.Random | None = None):
        self.spec = spec
        self.rng = rng or random.Random()

    @classmethod
    def from_json(cls, text: str) -> "ConfiguredFaults":
        try:
            spec = json.loads(text or "{}")
        except json.JSONDecodeError as error:
            raise ValueError(f"SAGA_FAULTS is not valid JSON: {error}") from error
        if not isinstance(spec, dict) or not all(isinstance(v, dict) for v in spec.values()):
            raise ValueError('SAGA_FAULTS must look like {"step[:compensation]": {"delay": 0.5}}')
        return cls(spec)

    def before(self, step: str, kind: str, ctx: StepContext) -> Refusal | None:
        fault = self.spec.get(step if kind == "action" else f"{step}:{kind}")
        if not fault:
            return None
        time.sleep(float(fault.get("delay", 0)))
        if ctx.attempt <= int(fault.get("exit_attempts", 0)):
            os._exit(70)
        if ctx.attempt <= int(fault.get("fail_attempts", 0)):
            raise InjectedFault(f"injected failure of {step} ({kind}), attempt {ctx.attempt}")
        if self.rng.random() < float(fault.get("error_rate", 0)):
            raise InjectedFault(f"injected random failure of {step} ({kind})")
        return None

"""A tiny app of the engine's tests: the definitions, participant and messages they exercise."""

"""`make chaos`: the whole shop as real processes, beaten on by concurrent clients and scheduled
faults, then checked against the contract's invariants (see tools/chaos/run.py)."""

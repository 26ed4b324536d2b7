"""`make bench`: the ceiling in plain SQL, the engine, the relay, end to end, growth and memory, in one
run on a database of its own (tools/bench/run.py)."""

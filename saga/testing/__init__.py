"""The engine's testing support, apart from what runs in production (as Eventuate Tram ships its
own): the in-process harness, given/expect scenarios of a definition, and faults injected into the
steps of a real worker (SAGA_FAULTS)."""

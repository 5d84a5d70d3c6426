"""Use cases and the processes that run them: the ledger application, relay, projector, API, CLI."""

"""The language of work-based learning: aggregates, their events and their rules.

Nothing in this package performs I/O or imports from `infra`, `services` or
`projections`; the application service and the adapters depend on it, never the
other way round.
"""

"""The event contract: what every reader of the ledger's events relies on, in one folder.

- ``catalogue.py``: every event type, its version and fields, taken from the aggregates
  (``python -m domain.contract.catalogue`` writes docs/events.md);
- ``cloudevents.py``: an event as a Kafka record (CloudEvents 1.0, binary mode) and back;
- ``envelope.py``: the event as the projections' folds read it;
- ``canonical.py``: the one canonical JSON every hashed, signed or published byte is
  written with.

The JSON Schemas and the AsyncAPI document are generated from the catalogue by
``infra/schemas.py`` (it needs pydantic, which the domain does not import); the event names
each projection handles or ignores are in ``projections/registry.py``, checked against this
catalogue by tests/unit/test_registry.py. See docs/decisions/059-event-contract-folder.md.
"""

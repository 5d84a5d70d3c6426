"""The event contract: what every reader of the ledger's events relies on.

Today: the one canonical JSON (``canonical.py``) that event bodies on the topic, audit-trail
hashes, checkpoints, read-model columns and state reports are written with. The event
catalogue (``domain/catalogue.py``), the JSON Schemas and the CloudEvents mapping
(``infra/cloudevents.py``) are the other parts (docs/events.md).
"""

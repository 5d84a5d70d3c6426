"""Adapters to the outside world: settings, databases, Kafka, the local broker."""

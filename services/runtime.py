"""The composition root: builds every part of the service from settings.

The CLI and the FastAPI lifespan both call it; nothing is created at import time.
``Runtime`` owns what it starts (the local broker, the relay and projector threads)
and stops it in reverse order.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from sqlalchemy import Engine

from infra import kafka as kafka_io
from infra.broker import LocalBroker
from infra.database import personal_data_vault, read_model_engine
from infra.schema import store_env
from infra.settings import Settings
from services import audit_checkpoints
from services.ledger import Ledger
from services.observed import ObservedWorkers
from services.projector import Projector
from services.relay import Relay

log = logging.getLogger(__name__)


def build_ledger(settings: Settings) -> Ledger:
    """The ledger on the configured store, with the personal-data vault keeping the birth
    dates that the child-labour rules need and the events must not hold.

    Every table is set up first, once, under a lock (``infra/schema.py``): the API, the relay
    and the projector may start at the same moment on a fresh database (decision 040)."""
    return Ledger(env=store_env(settings), birth_dates=personal_data_vault(settings))


@dataclass
class Runtime:
    settings: Settings
    ledger: Ledger
    engine: Engine
    bootstrap: str | None = None
    broker: LocalBroker | None = None
    relay: Relay | None = None
    projector: Projector | None = None
    observed: ObservedWorkers | None = None
    """The relay and projector of other processes, seen through their heartbeats."""
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    @classmethod
    def build(cls, settings: Settings, *, relay: bool = True, projector: bool = True) -> Runtime:
        """Everything the embedded default runs; start the local broker if none is configured."""
        ledger = build_ledger(settings)
        engine = read_model_engine(settings)
        runtime = cls(settings=settings, ledger=ledger, engine=engine,
                      bootstrap=settings.kafka_bootstrap_servers)
        if not (relay and projector):
            runtime.observed = ObservedWorkers(ledger, engine, settings.topic)
        if relay or projector:
            runtime.bootstrap = settings.kafka_bootstrap_servers
            if runtime.bootstrap is None:
                runtime.broker = LocalBroker(binary=settings.tansu_bin)
                runtime.broker.start()
                runtime.bootstrap = runtime.broker.bootstrap_servers
            # Refuse to start on a topic that would lose history, before serving anything.
            admin = kafka_io.admin_client(runtime.bootstrap)
            try:
                kafka_io.ensure_topic(admin, settings)
            finally:
                admin.close()
        if relay:
            assert runtime.bootstrap is not None
            runtime.relay = Relay(ledger, settings, runtime.bootstrap)
        if projector:
            assert runtime.bootstrap is not None
            runtime.projector = Projector(
                engine,
                bootstrap=runtime.bootstrap,
                topic=settings.topic,
                poll_timeout_ms=settings.projector_poll_timeout_ms,
                max_batch=settings.projector_max_batch,
            )
            audit_checkpoints.attach(runtime.projector, settings)
        return runtime

    def start(self) -> None:
        for name, worker in (("relay", self.relay), ("projector", self.projector)):
            if worker is not None:
                thread = threading.Thread(target=worker.run, args=(self._stop,), name=name,
                                          daemon=True)
                thread.start()
                self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)
        self._threads.clear()
        self.ledger.close()
        self.engine.dispose()
        if self.broker is not None:
            self.broker.stop()

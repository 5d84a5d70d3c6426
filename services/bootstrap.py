"""The composition root: the one place that builds the service's parts from settings.

Settings (with logging), the event store, the personal-data vault, the ledger, the read
models, the broker (the local one when none is configured) and its topic check, the relay
and the projector: the API's lifespan, every CLI command, the workers and the benchmarks
take their parts from here, and a test fails if a ``Ledger`` is built anywhere else
(``tests/unit/test_layers.py``). Nothing is created at import time. ``Runtime`` owns what it
starts (the local broker, the relay and projector threads) and stops it in reverse order.
Kafka's client and the workers' modules are imported by what starts them (``start_broker``,
``Runtime.build``), so that a command needing neither does not load them (decision 075).
"""

from __future__ import annotations

import gc
import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from infra import logs
from infra.broker import LocalBroker
from infra.database import personal_data_vault, read_model_engine
from infra.personal_data import PersonalDataVault
from infra.settings import Settings
from services.ledger import BirthDates, Ledger, UnitLimits
from services.schema import store_env

if TYPE_CHECKING:
    from services.workers.heartbeats import ObservedWorkers
    from services.workers.projector import Projector
    from services.workers.relay import Relay

log = logging.getLogger(__name__)


def build_settings(**overrides: object) -> Settings:
    """Settings from the environment (``WBL_*``), with the overrides a command line gave,
    and the JSON logs configured at their level: every entry point starts here."""
    settings = Settings(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]
    logs.configure(settings.log_level)
    return settings


def build_vault(settings: Settings) -> PersonalDataVault:
    """The personal-data vault: learners' names and birth dates, encrypted per learner."""
    return personal_data_vault(settings)


def build_ledger(settings: Settings, birth_dates: BirthDates | None = None) -> Ledger:
    """The ledger on the configured store, with the personal-data vault keeping the birth
    dates that the child-labour rules need and the events must not hold (a test of the
    ledger alone may pass ``BirthDatesInMemory``).

    Every table is set up first, once, under a lock (``services/schema.py``): the API, the
    relay and the projector may start at the same moment on a fresh database (decision 040)."""
    return Ledger(env=store_env(settings),
                  birth_dates=birth_dates if birth_dates is not None else build_vault(settings),
                  unit_limits=UnitLimits(
                      spill_after_events=settings.import_spill_after_events,
                      aggregates_in_memory=settings.import_aggregates_in_memory))


def build_read_models(settings: Settings) -> Engine:
    """The read models' database (a second SQLite file, or the same PostgreSQL)."""
    return read_model_engine(settings)


def settle_heap() -> None:
    """Put what the start of a long-running process made out of the garbage collector's way.

    Python's full (generation 2) collection walks every object the process holds: here the
    imported libraries, the routes, the schemas and the caches built at start. In the API
    of ``wbl run`` one took 178 ms, in the middle of serving, and held every request behind
    it: the p99 at 150 commands/s was that pause (decision 077). ``gc.freeze()`` moves what
    exists now to a generation no collection walks; what is made later is collected as
    before. Called once a server or worker has started, just before it serves; never in a
    test process, where apps come and go and frozen cycles would never be freed."""
    gc.collect()
    gc.freeze()


def start_broker(settings: Settings) -> tuple[Settings, LocalBroker | None]:
    """The configured broker, or a local one started now (the embedded default); then the
    topic is created or checked, refusing one that would lose history before anything
    serves. Returns the settings naming the broker, and the local broker to stop later."""
    from infra import kafka as kafka_io

    broker = None
    if settings.kafka_bootstrap_servers is None:
        broker = LocalBroker(binary=settings.tansu_bin)
        broker.start()
        settings = settings.model_copy(
            update={"kafka_bootstrap_servers": broker.bootstrap_servers})
    try:
        assert settings.kafka_bootstrap_servers is not None
        admin = kafka_io.admin_client(settings.kafka_bootstrap_servers)
        try:
            kafka_io.ensure_topic(admin, settings)
        finally:
            admin.close()
    except BaseException:
        if broker is not None:
            broker.stop()
        raise
    return settings, broker


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
        from services.workers import audit_checkpoints
        from services.workers.heartbeats import ObservedWorkers
        from services.workers.projector import Projector
        from services.workers.relay import Relay

        ledger = build_ledger(settings)
        engine = build_read_models(settings)
        runtime = cls(settings=settings, ledger=ledger, engine=engine,
                      bootstrap=settings.kafka_bootstrap_servers)
        if not (relay and projector):
            runtime.observed = ObservedWorkers(ledger, engine, settings.topic)
        if relay or projector:
            settings, runtime.broker = start_broker(settings)
            runtime.bootstrap = settings.kafka_bootstrap_servers
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
                prefetch=settings.projector_prefetch,
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

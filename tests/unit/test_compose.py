"""No Docker engine runs here, so the production compose file is checked by reading it:
its services, ports and environment must agree with the settings class and the CLI."""

from __future__ import annotations

from pathlib import Path

import yaml
from sqlalchemy.engine import make_url

from infra.settings import Settings
from services.cli import app as cli

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_kafka_kraft_postgres_and_the_three_roles() -> None:
    services = compose()["services"]
    assert set(services) >= {"kafka", "postgres", "api", "relay", "projector"}
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert "controller" in services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]
    assert services["kafka"]["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert services["postgres"]["image"].startswith("postgres:15")
    commands = {name.lower() for name in (c.name or c.callback.__name__
                                          for c in cli.registered_commands)}
    for role in ("api", "relay", "projector"):
        assert services[role]["build"] == "."
        assert services[role]["command"] == [role]
        assert role in commands


def test_every_wbl_variable_is_a_setting_and_settings_parse() -> None:
    fields = {f"WBL_{name.upper()}" for name in Settings.model_fields}
    for role in ("api", "relay", "projector"):
        env = compose()["services"][role]["environment"]
        unknown = {k for k in env if k.startswith("WBL_")} - fields
        assert not unknown, f"{role} sets variables the settings class does not read: {unknown}"
        settings = Settings(**{k.removeprefix("WBL_").lower(): v for k, v in env.items()})
        assert settings.kafka_bootstrap_servers == "kafka:9092"
        assert settings.uses_postgres


def test_urls_and_ports_point_at_the_compose_services() -> None:
    services = compose()["services"]
    env = services["api"]["environment"]
    db = make_url(env["WBL_DATABASE_URL"])
    pg = services["postgres"]["environment"]
    assert (db.host, db.username, db.password, db.database) == (
        "postgres", pg["POSTGRES_USER"], pg["POSTGRES_PASSWORD"], pg["POSTGRES_DB"])
    kafka_host, kafka_port = env["WBL_KAFKA_BOOTSTRAP_SERVERS"].split(":")
    assert kafka_host == "kafka"
    assert f"PLAINTEXT://kafka:{kafka_port}" in services["kafka"]["environment"][
        "KAFKA_ADVERTISED_LISTENERS"]
    api_port = env["WBL_API_PORT"]
    assert f"{api_port}:{api_port}" in services["api"]["ports"]
    assert env["WBL_API_HOST"] == "0.0.0.0"


def test_dockerfile_installs_the_four_packages_and_runs_wbl() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for package in ("domain", "services", "projections", "infra"):
        assert f"COPY {package} ./{package}" in dockerfile
    assert 'ENTRYPOINT ["wbl"]' in dockerfile

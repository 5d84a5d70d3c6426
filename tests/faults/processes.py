"""The service's roles as processes of their own, for the fault scenarios to kill."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from infra.settings import Settings


def role_process(role: str, settings: Settings, log: Path, **env_overrides: str
                 ) -> subprocess.Popen[bytes]:
    """``wbl <role>`` on the test's store and broker, its output appended to ``log``;
    ``env_overrides`` are further ``WBL_*`` settings (``WBL_RELAY_BATCH_SIZE="40"``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WBL_")}
    env.update({
        "WBL_DATA_DIR": str(settings.data_dir),
        "WBL_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers or "",
        "WBL_TOPIC": settings.topic,
        "WBL_LOG_LEVEL": "WARNING",
        **env_overrides,
    })
    if settings.database_url:
        env["WBL_DATABASE_URL"] = settings.database_url
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "services.cli", role], env=env,
                                stdout=out, stderr=subprocess.STDOUT)

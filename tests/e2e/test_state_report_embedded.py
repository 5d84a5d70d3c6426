"""Issue 13, as a state data analyst tried it: `wbl run` on the embedded default (SQLite
files in a data dir, its own local broker), organisations registered over HTTP, and the
state report rolling school -> district -> state, over HTTP and from `wbl report state` on
the same data dir. Before issue 13 the registry lived in the API's own SQLite file, the
report read another, and no district or state row came out.

Then a school moves to another district: the report as of the earlier cut-off is the same
bytes (same content hash), and a new one rolls the school up under its new district. A
placement of an organisation nobody registered makes the report refuse, naming it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from domain.contract.canonical import canonical_json
from infra.broker import free_port
from infra.settings import Settings
from services.api.auth import issue_token, token_key
from tests.e2e.test_cli_run import WblRun, wbl_run

pytestmark = pytest.mark.integration

TODAY = date.today()
STARTS = TODAY - timedelta(days=30)
PERIOD = {"period": "this-year", "starts_on": (TODAY - timedelta(days=200)).isoformat(),
          "ends_on": (TODAY + timedelta(days=100)).isoformat()}
SCHOOLS = {"school-a": ("district-n", 5), "school-b": ("district-n", 3),
           "school-c": ("district-s", 4)}


def as_(api: WblRun, token: str, method: str, path: str, body: Any = None,
        **params: Any) -> Any:
    response = api.request(method, path, json=body, params=params or None,
                           headers={"Authorization": f"Bearer {token}"})
    assert response.status_code < 300, (path, response.text)
    return response


def place(api: WblRun, tokens: dict[str, str], org: str, learners: int) -> None:
    coordinator = tokens[f"coord:{org}"]
    opportunity = as_(api, coordinator, "POST", "/opportunities", {
        "organisation_id": org, "title": "Intern", "employer_name": "Acme",
        "worksite": "1 Main St", "wbl_type": "PaidInternship", "paid": True,
        "hourly_wage": "15.00", "capacity": 50, "starts_on": STARTS.isoformat(),
        "ends_on": (TODAY + timedelta(days=60)).isoformat()}).json()["id"]
    for n in range(learners):
        learner = f"lrn-{org}-{n}"
        pid = as_(api, coordinator, "POST", "/placements", {
            "opportunity_id": opportunity, "learner_id": learner, "supervisor_id": "sup-1",
            "learner_born_on": "2000-01-01"}).json()["id"]
        for who, party in ((issue_token(tokens["key"], actor_id=learner,
                                        role="learner", organisation_id=org), "learner"),
                           (tokens["supervisor"], "employer"), (coordinator, "coordinator")):
            as_(api, who, "POST", f"/placements/{pid}/agreement-signatures", {"party": party})
        as_(api, tokens["supervisor"], "POST", f"/placements/{pid}/start",
            {"started_on": STARTS.isoformat()})


def participants(report: dict[str, Any]) -> dict[str, int | None]:
    return {r["organisation_id"]: r["value"] for r in report["figures"]
            if (r["measure"], r["dimension"]) == ("participants", "all")}


def cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WBL_")}
    env["WBL_DATA_DIR"] = str(data_dir)
    return subprocess.run([sys.executable, "-m", "services.cli", *args], env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_embedded_default_rolls_up_and_reproduces_after_a_move(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in [k for k in os.environ if k.startswith("WBL_")]:
        monkeypatch.delenv(name)
    data_dir, log = tmp_path / "data", tmp_path / "wbl.log"
    with wbl_run(data_dir, free_port(), log) as api:
        key = token_key(Settings(data_dir=data_dir))
        tokens: dict[str, Any] = {
            "key": key,
            "admin": issue_token(key, actor_id="adm-1", role="admin"),
            "auditor": issue_token(key, actor_id="aud-1", role="state_auditor"),
            "supervisor": issue_token(key, actor_id="sup-1", role="supervisor",
                                      organisation_id="acme"),
        }
        for org in [*SCHOOLS, "ghost"]:
            tokens[f"coord:{org}"] = issue_token(key, actor_id=f"coord-{org}",
                                                 role="coordinator", organisation_id=org)
        admin = tokens["admin"]
        as_(api, admin, "POST", "/organisations",
            {"id": "state-x", "name": "State X", "kind": "state_agency"})
        for district in ("district-n", "district-s"):
            as_(api, admin, "POST", "/organisations", {"id": district, "name": district,
                                                       "kind": "district",
                                                       "parent_id": "state-x"})
        for school, (district, learners) in SCHOOLS.items():
            as_(api, admin, "POST", "/organisations", {"id": school, "name": school,
                                                       "kind": "school",
                                                       "parent_id": district})
            place(api, tokens, school, learners)
        # The people registry still answers as before (authorisation reads it).
        listed = as_(api, admin, "GET", "/organisations", parent_id="district-n").json()
        assert [o["id"] for o in listed] == ["school-a", "school-b"]

        auditor = tokens["auditor"]
        first = as_(api, auditor, "GET", "/reports/state", **PERIOD, min_cell=1).json()
        assert participants(first) == {"school-a": 5, "school-b": 3, "school-c": 4,
                                       "district-n": 8, "district-s": 4, "state-x": 12}
        cutoff = first["cutoff"]["position"]

        # The same report from the CLI on the same files, then the audit on its file.
        out = tmp_path / "report.json"
        made = cli(data_dir, "report", "state", "--period", PERIOD["period"],
                   "--starts", PERIOD["starts_on"], "--ends", PERIOD["ends_on"],
                   "--position", str(cutoff), "--min-cell", "1", "--out", str(out))
        assert made.returncode == 0, made.stderr
        assert json.loads(out.read_text())["content_hash"] == first["content_hash"]
        small = cli(data_dir, "report", "state", "--period", PERIOD["period"],
                    "--starts", PERIOD["starts_on"], "--ends", PERIOD["ends_on"],
                    "--position", str(cutoff), "--min-cell", "4", "--no-save",
                    "--out", str(tmp_path / "small.json"))
        assert small.returncode == 0, small.stderr
        audited = cli(data_dir, "report", "audit", str(tmp_path / "small.json"))
        assert audited.returncode == 0, audited.stdout + audited.stderr
        assert json.loads(audited.stdout)["not_protected"] == []
        assert json.loads(audited.stdout)["suppressed"] > 0

        as_(api, admin, "POST", "/organisations/school-b/move",
            {"parent_id": "district-s", "reason": "Boundary change"})
        again = as_(api, auditor, "GET", "/reports/state", **PERIOD, min_cell=1,
                    position=cutoff).json()
        assert canonical_json(again) == canonical_json(first)
        assert again["content_hash"] == first["content_hash"]
        now = as_(api, auditor, "GET", "/reports/state", **PERIOD, min_cell=1).json()
        assert participants(now)["district-s"] == 7
        assert participants(now)["district-n"] == 5

        place(api, tokens, "ghost", 1)
        refused = api.get("/reports/state", params={**PERIOD, "min_cell": 1},
                          headers={"Authorization": f"Bearer {auditor}"})
        assert refused.status_code == 422, refused.text
        assert refused.json()["type"] == "/errors/hierarchy-unresolved"
        assert "ghost" in refused.json()["detail"]


def test_a_negative_number_of_workers_is_refused_and_nothing_is_kept(tmp_path: Path) -> None:
    """``wbl report state --workers`` (decision 078): a negative count is a clear error
    naming the option, and no report is written or kept."""
    out = tmp_path / "report.json"
    done = cli(tmp_path / "data", "report", "state", "--period", "2025-26", "--starts",
               "2025-07-01", "--ends", "2026-06-30", "--workers", "-1", "--out", str(out))
    assert done.returncode == 2
    assert "--workers" in done.stderr and "greater than or equal to 0" in done.stderr
    assert not out.exists()
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").iterdir())

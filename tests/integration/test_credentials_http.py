"""Signed credentials from the user's side, on both stores: a coordinator issues, revokes
and reissues over HTTP; a learner fetches the signed Open Badge and CLR; an employer checks
them with an independent implementation (``openbadgeslib``, resolving the issuer's did:web
document and status list from the API exactly as it would over HTTPS), with
``POST /credentials/verify`` (no sign-in) and with ``wbl credentials verify FILE``.

What must hold (issue 14): every credential handed out verifies; one character changed
makes it fail; a revoked or reissued one fails, and says why; the audit trail and the
learner's transcript show the revocation and the reissue with their reasons; the documents
validate against the official OB 3.0 and CLR 2.0 JSON Schemas.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from jsonschema import Draft201909Validator, FormatChecker
from openbadgeslib.ob3.clr import bundled_clr_contexts
from openbadgeslib.ob3.did import resolve_verification_method
from openbadgeslib.ob3.ldp import OB3LdpVerifier, verify_data_integrity_proof
from openbadgeslib.ob3.verifier import OB3VerificationError
from pydantic import SecretStr

from domain.actor import Actor, Role
from infra.settings import Settings
from services.api.app import create_app
from services.api.auth import issue_token
from services.bootstrap import Runtime
from tests.support import WORKLOAD_ORG, placement_story

pytestmark = pytest.mark.integration
SECRET = "credential-tests-secret-0123456789abcdef"
PUBLIC_URL = "https://wbl.test"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ob3"
OB3_SCHEMA = Draft201909Validator(
    json.loads((FIXTURES / "ob_v3p0_achievementcredential_schema.json").read_text()),
    format_checker=FormatChecker())
CLR_SCHEMA = Draft201909Validator(
    json.loads((FIXTURES / "clr_v2p0_clrcredential_schema.json").read_text()),
    format_checker=FormatChecker())


class World:
    def __init__(self, client: TestClient, runtime: Runtime, auth: dict[str, dict[str, str]]
                 ) -> None:
        self.client, self.runtime, self.auth = client, runtime, auth
        self.fetched: list[str] = []

    def download(self, url: str) -> bytes:
        """What a verifier's HTTPS fetch gets: the API's answer at that URL (only this
        service's address is served; anything else fails like a dead host)."""
        parts = urlsplit(url)
        if f"{parts.scheme}://{parts.netloc}" != PUBLIC_URL:
            raise OSError(f"no route to {url}")
        self.fetched.append(parts.path)
        response = self.client.get(parts.path)  # no token: these are public
        if response.status_code != 200:
            raise OSError(f"{url}: HTTP {response.status_code}")
        return response.content

    def call(self, who: str, method: str, path: str, body: Any = None, **params: Any) -> Any:
        response = self.client.request(method, path, json=body, params=params,
                                       headers=self.auth.get(who, {}))
        assert response.status_code < 300, response.text
        return response.json()

    def verify_here(self, credential: dict[str, Any]) -> dict[str, Any]:
        response = self.client.post("/credentials/verify", json={"credential": credential})
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result


@pytest.fixture
def world(store_settings: Settings, kafka_bootstrap: str, topic_name: str) -> Iterator[World]:
    settings = store_settings.model_copy(update={
        "kafka_bootstrap_servers": kafka_bootstrap, "topic": topic_name,
        "jwt_secret": SecretStr(SECRET), "read_wait_timeout_s": 10.0,
        "public_url": PUBLIC_URL})
    runtime = Runtime.build(settings)
    runtime.start()
    app = create_app(runtime=runtime)
    try:
        with TestClient(app) as client:
            key = app.state.token_key
            auth = {who: {"Authorization": "Bearer " + issue_token(
                key, actor_id=actor_id, role=role, organisation_id=org)}
                for who, (actor_id, role, org) in {
                    "coordinator": ("coord-1", "coordinator", WORKLOAD_ORG),
                    "ana": ("ana", "learner", WORKLOAD_ORG),
                    "auditor": ("aud-1", "state_auditor", None)}.items()}
            yield World(client, runtime, auth)
    finally:
        runtime.stop()


def _evaluated_placement(runtime: Runtime) -> str:
    """Ana's internship with approved hours and a final evaluation (ready for a credential)."""
    ledger = runtime.ledger
    placement_story(ledger, learner="ana", days=3)
    found = ledger.recorder.select_notifications(start=1, limit=10_000)
    placement = next(str(n.originator_id) for n in found if n.topic.endswith("LearnerMatched"))
    from uuid import UUID

    ledger.evaluate_placement(Actor("super-1", Role.SUPERVISOR, WORKLOAD_ORG), UUID(placement),
                              scores={"safety": 4}, evaluator_role="supervisor",
                              evaluated_on=date(2026, 1, 9))
    return placement


def _badge(w: World, credential_id: str, position: int) -> dict[str, Any]:
    badge: dict[str, Any] = w.call("ana", "GET",
                                   f"/learners/ana/credentials/{credential_id}/open-badge",
                                   min_position=position)
    return badge


def independent_verify(w: World, credential: dict[str, Any]) -> Any:
    """openbadgeslib, trusting nothing but the issuer's did:web: it fetches the DID document
    and the status list (whose own signature it checks) from the API."""
    return OB3LdpVerifier.for_issuer_did(credential["issuer"]["id"]).verify(
        credential, check_status=True, download=w.download)


def test_issue_revoke_reissue_verify_over_http(world: World) -> None:
    w = world
    placement = _evaluated_placement(w.runtime)
    issued = w.call("coordinator", "POST", f"/placements/{placement}/credentials",
                    {"kind": "Fieldwork", "issuer": "Springfield District 42",
                     "issued_on": "2026-01-10"})
    first = str(issued["created_id"])
    badge = _badge(w, first, issued["position"])

    # content: validFrom is the issuance, a hashed subject, enumeration terms, a status entry
    assert badge["proof"]["cryptosuite"] == "eddsa-rdfc-2022"
    assert badge["issuer"]["id"].startswith("did:web:wbl.test:issuers:")
    assert badge["awardedDate"] == "2026-01-10T00:00:00Z"
    assert badge["validFrom"] > "2026-01-10"  # when the issuance was recorded (today)
    subject = badge["credentialSubject"]
    assert "id" not in subject and "ana" not in json.dumps(subject)
    assert subject["identifier"][0]["identityHash"].startswith("sha256$")
    assert badge["credentialStatus"]["type"] == "BitstringStatusListEntry"
    OB3_SCHEMA.validate(badge)

    # it verifies with openbadgeslib and here; one character changed and it fails both
    credential = independent_verify(w, badge)
    assert credential.issuer.id == badge["issuer"]["id"]
    assert {"/issuers/" + badge["issuer"]["id"].rsplit(":", 1)[1] + "/did.json",
            urlsplit(badge["credentialStatus"]["statusListCredential"]).path} <= set(w.fetched)
    assert w.verify_here(badge)["verified"] is True
    tampered = copy.deepcopy(badge)
    tampered["name"] = tampered["name"][:-1] + chr(ord(tampered["name"][-1]) ^ 1)
    with pytest.raises(OB3VerificationError):
        independent_verify(w, tampered)
    verdict = w.verify_here(tampered)
    assert verdict["verified"] is False
    assert any("signature does not match" in p for p in verdict["problems"]), verdict
    respelt = json.loads(json.dumps(badge).replace('"awardedDate"', '"awardedDatf"'))
    with pytest.raises(OB3VerificationError):
        independent_verify(w, respelt)
    assert w.verify_here(respelt)["verified"] is False

    # reissue: the old one fails, saying why; the new one verifies
    reissued = w.call("coordinator", "POST",
                      f"/placements/{placement}/credentials/{first}/reissue",
                      {"reason": "Employer name corrected"})
    second = str(reissued["created_id"])
    new_badge = _badge(w, second, reissued["position"])
    independent_verify(w, new_badge)
    with pytest.raises(OB3VerificationError, match="revocation"):
        independent_verify(w, badge)
    old_verdict = w.verify_here(badge)
    assert not old_verdict["verified"]
    assert any("reissued on" in p and "Employer name corrected" in p
               for p in old_verdict["problems"]), old_verdict

    # the CLR: signed, every embedded credential signed, associations; verifies both ways
    clr = w.call("ana", "GET", "/learners/ana/clr", min_position=reissued["position"])
    members = clr["credentialSubject"]["verifiableCredential"]
    assert [m["id"] for m in members] == [new_badge["id"]]
    assert clr["credentialSubject"]["association"][0]["associationType"] == "isPartOf"
    assert clr["validFrom"] >= new_badge["validFrom"][:10]
    CLR_SCHEMA.validate(clr)
    for member in members:
        OB3_SCHEMA.validate(member)
        independent_verify(w, member)
    key = resolve_verification_method(clr["proof"]["verificationMethod"], download=w.download)
    verify_data_integrity_proof(clr, key, extra_contexts=bundled_clr_contexts())
    assert w.verify_here(clr)["verified"] is True
    broken_clr = copy.deepcopy(clr)
    broken_clr["credentialSubject"]["achievement"][0]["name"] += "!"
    with pytest.raises(OB3VerificationError):
        verify_data_integrity_proof(broken_clr, key, extra_contexts=bundled_clr_contexts())
    assert w.verify_here(broken_clr)["verified"] is False

    # revoke: fails everywhere with the reason, the CLR that embeds it too
    revoked = w.call("coordinator", "POST",
                     f"/placements/{placement}/credentials/{second}/revoke",
                     {"reason": "Hours found to be falsified"})
    w.call("auditor", "GET", "/audit-trail", placement_id=placement,
           min_position=revoked["position"])
    with pytest.raises(OB3VerificationError, match="revocation"):
        independent_verify(w, new_badge)
    problems = w.verify_here(new_badge)["problems"]
    assert any("revoked on" in p and "falsified" in p for p in problems), problems
    assert w.verify_here(clr)["verified"] is False

    # the audit trail and the learner's transcript show both, with their reasons
    trail = w.call("auditor", "GET", "/audit-trail", placement_id=placement, limit=500)
    summaries = {e["event_type"]: e for e in trail}
    assert summaries["CredentialReissued"]["summary"] == (
        f"Reissued credential {first} as {second} (Fieldwork by Springfield District 42): "
        "Employer name corrected")
    assert summaries["CredentialRevoked"]["reason"] == "Hours found to be falsified"
    (experience,) = w.call("ana", "GET", "/learners/ana/transcript")["experiences"]
    shown = {c["credential_id"]: c for c in experience["credentials"]}
    assert shown[first]["status"] == "reissued" and shown[first]["replaced_by"] == second
    assert shown[second]["status"] == "revoked"
    assert shown[second]["status_reason"] == "Hours found to be falsified"
    assert "Credential:" not in experience["notation"]  # nothing in force any more
    refused = w.client.get("/learners/ana/clr", headers=w.auth["ana"])
    assert refused.status_code == 404 and refused.json()["type"] == "/errors/no-credentials"

    # and a revoked credential cannot be revoked again (refused, nothing stored)
    again = w.client.post(f"/placements/{placement}/credentials/{second}/revoke",
                          json={"reason": "twice"}, headers=w.auth["coordinator"])
    assert again.status_code == 409 and again.json()["type"] == "/errors/credential-revoked"


def test_a_retired_key_still_verifies_and_the_cli_says_why(world: World, tmp_path: Path
                                                            ) -> None:
    w = world
    placement = _evaluated_placement(w.runtime)
    issued = w.call("coordinator", "POST", f"/placements/{placement}/credentials",
                    {"kind": "Certificate", "issuer": "Acme Apprenticeship Committee"})
    old_badge = _badge(w, str(issued["created_id"]), issued["position"])
    old_kid = old_badge["proof"]["verificationMethod"].rsplit("#", 1)[1]

    settings = w.runtime.settings
    env = {**os.environ, "WBL_DATA_DIR": str(settings.data_dir),
           "WBL_PUBLIC_URL": PUBLIC_URL, "WBL_LOG_LEVEL": "WARNING"}
    if settings.database_url:
        env["WBL_DATABASE_URL"] = settings.database_url
    wbl = [sys.executable, "-m", "services.cli", "credentials"]

    rotated = subprocess.run([*wbl, "rotate-key"], env=env, capture_output=True, text=True,
                             timeout=60)
    assert rotated.returncode == 0, rotated.stderr
    # a restarted service signs with the new key and still publishes the old one
    w.client.app.state.credentials = None  # type: ignore[attr-defined]
    keys = w.client.get("/credentials/keys").json()["keys"]
    assert {k["kid"]: k["status"] for k in keys}[old_kid] == "retired"
    # the badge handed out before the rotation, signed with the now retired key, verifies
    independent_verify(w, old_badge)
    assert w.verify_here(old_badge)["verified"] is True
    reissued = w.call("coordinator", "POST",
                      f"/placements/{placement}/credentials/{issued['created_id']}/reissue",
                      {"reason": "Title corrected"})
    new_badge = _badge(w, str(reissued["created_id"]), reissued["position"])
    assert new_badge["proof"]["verificationMethod"].rsplit("#", 1)[1] != old_kid
    independent_verify(w, new_badge)

    # the CLI as typed: the new credential verifies (exit 0), the replaced one does not
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps(new_badge))
    bad.write_text(json.dumps(old_badge))
    ok = subprocess.run([*wbl, "verify", str(good)], env=env, capture_output=True, text=True,
                        timeout=60)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "VERIFIED" in ok.stdout
    refused = subprocess.run([*wbl, "verify", str(bad)], env=env, capture_output=True,
                             text=True, timeout=60)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "retired (still published)" in refused.stdout  # its key is still trusted ...
    assert "FAIL status: reissued on" in refused.stdout  # ... but it was replaced


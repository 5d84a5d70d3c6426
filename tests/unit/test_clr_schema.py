"""The CLR the service hands out against 1EdTech's CLR 2.0 JSON Schema (the JSON-LD
adaptation of ``ClrCredential``, copy in ``tests/fixtures/ob3/`` with its source and hash),
and each credential inside it against the OB 3.0 ``AchievementCredential`` schema.

The CLR comes from ``Credentials.signed_clr``, the function behind ``GET
/learners/{id}/clr``; its proof is checked with ``openbadgeslib`` too, so a change made to
satisfy the schema cannot quietly break the signature. References are resolved from the
local copies only: a registry that refuses every retrieval stands in for the network.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from jsonschema import Draft201909Validator, FormatChecker
from jsonschema.exceptions import ValidationError
from openbadgeslib.ob3.clr import bundled_clr_contexts
from openbadgeslib.ob3.ldp import verify_data_integrity_proof
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource
from referencing.jsonschema import DRAFT201909
from sqlalchemy import create_engine

from infra.settings import Settings
from projections import transcript
from projections.audit_checkpoints import KeyRing
from services.credentials.issuing import Credentials
from tests.unit.projections.test_folds import fold, internship_story

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ob3"
CLR_SCHEMA_FILE = FIXTURES / "clr_v2p0_clrcredential_schema.json"
CLR_SCHEMA_ID = ("https://purl.imsglobal.org/spec/clr/v2p0/schema/json/"
                 "clr_v2p0_clrcredential_schema.json")
OB_SCHEMA_FILE = FIXTURES / "ob_v3p0_achievementcredential_schema.json"
PUBLIC_URL = "https://wbl.example.org:8443/district"

# RFC 3339 date-time (JSON Schema's ``date-time``): jsonschema checks it only when the
# optional rfc3339-validator is installed, which it is not here, so check it ourselves.
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")
FORMATS = FormatChecker()


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not _RFC3339.fullmatch(value):
        return False
    datetime.fromisoformat(value.upper().replace("Z", "+00:00"))  # a real day and time
    return True


def _refuse(uri: str) -> Resource[Any]:
    raise NoSuchResource(ref=uri)  # never the network


def _schema(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def _validator(path: Path) -> Draft201909Validator:
    schemas = [_schema(p) for p in (CLR_SCHEMA_FILE, OB_SCHEMA_FILE)]
    registry: Registry[Any] = Registry(retrieve=_refuse).with_resources(
        (s["$id"], DRAFT201909.create_resource(s)) for s in schemas)
    return Draft201909Validator(_schema(path), registry=registry, format_checker=FORMATS)


CLR_SCHEMA = _validator(CLR_SCHEMA_FILE)
OB_SCHEMA = _validator(OB_SCHEMA_FILE)


def _errors(validator: Draft201909Validator, document: dict[str, Any]) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}"
            for e in validator.iter_errors(document)]


@pytest.fixture(scope="module")
def issued(tmp_path_factory: pytest.TempPathFactory
           ) -> tuple[dict[str, Any], Ed25519PrivateKey]:
    """A signed CLR as the service makes it, for a learner holding one credential (an
    aligned badge: an O*NET occupation code on the experience), and the key it was signed
    with."""
    state = fold(transcript.evolve, internship_story())["p-1"]
    experience = transcript.experience_of({
        **transcript._to_row(state), "title": "Intern", "employer_name": "Acme Robotics",
        "occupation_code": "17-3024.01"})
    assert experience.credentials_in_force
    key = Ed25519PrivateKey.generate()
    settings = Settings(data_dir=tmp_path_factory.mktemp("clr"), public_url=PUBLIC_URL)
    service = Credentials(settings, create_engine("sqlite://"), key,
                          KeyRing(key.public_key()))
    signed = service.signed_clr(experience.learner_id, [experience])
    assert signed is not None
    return signed, key


def test_the_clr_schema_copy_is_the_pinned_official_one() -> None:
    raw = CLR_SCHEMA_FILE.read_bytes()
    assert hashlib.sha256(raw).hexdigest() in (FIXTURES / "README.md").read_text()
    schema = json.loads(raw)
    assert schema["$id"] == CLR_SCHEMA_ID
    assert schema["$schema"] == "https://json-schema.org/draft/2019-09/schema#"
    Draft201909Validator.check_schema(schema)
    refs = set(re.findall(r'"\$ref" : "([^"]*)"', raw.decode("utf-8")))
    assert refs and all(r.startswith("#/$defs/") for r in refs), refs
    assert {r.removeprefix("#/$defs/") for r in refs} <= set(schema["$defs"])


def test_the_clr_the_service_issues_validates_against_the_clr_2_0_schema(
        issued: tuple[dict[str, Any], Ed25519PrivateKey]) -> None:
    clr, key = issued
    assert _errors(CLR_SCHEMA, clr) == []
    # the spec's context order (CLR 2.0 ClrCredential: VC 2.0, CLR 2.0.1, OB 3.0.3), still
    # signed over: openbadgeslib verifies the proof with the pinned CLR context
    assert clr["@context"] == [transcript.VC_CONTEXT, transcript.CLR_CONTEXT,
                               transcript.OB_CONTEXT]
    verify_data_integrity_proof(
        clr, key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo),
        extra_contexts=bundled_clr_contexts())


def test_each_credential_in_the_clr_validates_against_the_achievement_credential_schema(
        issued: tuple[dict[str, Any], Ed25519PrivateKey]) -> None:
    members = issued[0]["credentialSubject"]["verifiableCredential"]
    assert members
    for member in members:
        assert "OpenBadgeCredential" in member["type"] and "proof" in member
        assert _errors(OB_SCHEMA, member) == []


def _without(document: dict[str, Any], path: str) -> dict[str, Any]:
    changed = copy.deepcopy(document)
    *parents, last = path.split(".")
    node = changed
    for name in parents:
        node = node[name]
    del node[last]
    return changed


@pytest.mark.parametrize("path", ["credentialSubject", "validFrom", "issuer", "name",
                                  "credentialSubject.verifiableCredential",
                                  "credentialSubject.type"])
def test_a_clr_missing_a_required_property_fails_the_schema(
        issued: tuple[dict[str, Any], Ed25519PrivateKey], path: str) -> None:
    broken = _without(issued[0], path)
    with pytest.raises(ValidationError, match=f"'{path.rsplit('.', 1)[-1]}' is a required"):
        CLR_SCHEMA.validate(broken)


@pytest.mark.parametrize("change", ["contexts in the order we once used", "a day, no time",
                                    "no ClrCredential type"])
def test_a_clr_the_schema_refuses_in_other_ways(
        issued: tuple[dict[str, Any], Ed25519PrivateKey], change: str) -> None:
    broken = copy.deepcopy(issued[0])
    if change == "contexts in the order we once used":  # before this test: VC, OB, CLR
        broken["@context"] = [transcript.VC_CONTEXT, transcript.OB_CONTEXT,
                              transcript.CLR_CONTEXT]
    elif change == "a day, no time":
        broken["validFrom"] = broken["validFrom"][:10]
    else:
        broken["type"] = ["VerifiableCredential"]
    assert _errors(CLR_SCHEMA, broken) != []


def test_an_embedded_credential_missing_its_subject_fails_the_achievement_schema(
        issued: tuple[dict[str, Any], Ed25519PrivateKey]) -> None:
    member = issued[0]["credentialSubject"]["verifiableCredential"][0]
    with pytest.raises(ValidationError, match="'credentialSubject' is a required"):
        OB_SCHEMA.validate(_without(member, "credentialSubject"))

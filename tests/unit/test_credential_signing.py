"""The pure parts of signed credentials: proofs, status lists, DID documents, the key
ring, and the revoke / reissue rules of the Placement. The independent oracle is
``openbadgeslib``: what it decodes, verifies or derives must agree with what we make."""

from __future__ import annotations

import copy
import hashlib
import json
from datetime import date
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from openbadgeslib.ob3.did import did_web_from_url, resolve_verification_method
from openbadgeslib.ob3.ldp import verify_data_integrity_proof
from openbadgeslib.ob3.status import decode_encoded_list, set_indices
from openbadgeslib.ob3.verifier import OB3VerificationError

from domain.errors import NotPermitted, RuleViolated, UnknownAggregate, WrongState
from projections.audit_checkpoints import KeyRing
from projections.transcript import Issuing, did_web, identity, issuer_key
from services.credentials import signing
from services.credentials.signing import ProofRefused, check_proof, did_document, sign
from tests.unit.domain.factories import refused
from tests.unit.domain.test_placement_lifecycle import (
    COORDINATOR,
    LEARNER,
    TODAY,
    _evaluate,
    active,
)

ROOT = Path(__file__).resolve().parents[2]
ISSUING = Issuing("https://wbl.example.org:8443/district")
ISSUER = ISSUING.issuer_did("District 42")


def badge() -> dict[str, object]:
    return {
        "@context": [signing.VC_CONTEXT, signing.OB_CONTEXT],
        "id": "urn:uuid:6a2f4a56-9f3e-4bb0-8d0f-1d2c3b4a5e6f",
        "type": ["VerifiableCredential", "OpenBadgeCredential"],
        "issuer": ISSUING.profile("District 42"),
        "validFrom": "2026-01-10T09:30:00Z",
        "name": "Machinist intern at Acme",
        "credentialSubject": {
            "type": ["AchievementSubject"],
            "identifier": [identity("ana", "6a2f4a56")],
            "achievement": {"id": "urn:wbl-ledger:achievement:p-1:Fieldwork",
                            "type": ["Achievement"], "achievementType": "Fieldwork",
                            "name": "Machinist intern", "description": "d",
                            "criteria": {"narrative": "n"}}},
        "credentialStatus": ISSUING.status_entry("District 42", 131_072 + 5),
    }


def _pem(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


def test_the_contexts_signed_with_are_the_pinned_official_copies() -> None:
    for name in ("credentials-v2.json", "ob-v3p0-context-3.0.3.json",
                 "clr_context_2.0.1.json"):
        ours = (ROOT / "services" / "credentials" / "contexts" / name).read_bytes()
        assert ours == (ROOT / "tests" / "fixtures" / "ob3" / name).read_bytes()
        assert hashlib.sha256(ours).hexdigest()[:8] in (
            ROOT / "tests" / "fixtures" / "ob3" / "README.md").read_text()


def test_a_proof_verifies_with_openbadgeslib_and_fails_on_any_change() -> None:
    key = Ed25519PrivateKey.generate()
    signed = sign(badge(), key, ISSUER, created="2026-01-10T09:30:01Z")
    assert signed["proof"]["verificationMethod"].startswith(ISSUER + "#")
    verify_data_integrity_proof(signed, _pem(key))  # the independent check
    check_proof(signed, key.public_key())  # ours
    changed = copy.deepcopy(signed)
    changed["validFrom"] = "2026-01-10T09:30:02Z"
    with pytest.raises(OB3VerificationError):
        verify_data_integrity_proof(changed, _pem(key))
    with pytest.raises(ProofRefused, match="changed after it was signed"):
        check_proof(changed, key.public_key())
    with pytest.raises(ProofRefused, match="changed after it was signed"):
        check_proof(signed, Ed25519PrivateKey.generate().public_key())
    smuggled = {**copy.deepcopy(signed), "unsignedClaim": "trust me"}
    with pytest.raises(ProofRefused, match="not the JSON-LD its contexts define"):
        check_proof(smuggled, key.public_key())
    with pytest.raises(ValueError, match="already carries a proof"):
        sign(signed, key, ISSUER)


def test_the_did_document_publishes_current_and_retired_keys_as_multikeys() -> None:
    old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    document = did_document(ISSUER, KeyRing(new.public_key(), [old.public_key()]))
    assert document["id"] == ISSUER
    first, second = document["verificationMethod"]
    assert first["id"].endswith(signing.kid_of(new.public_key()))  # current first
    for method, key in ((first, new), (second, old)):
        pem = resolve_verification_method(
            method["id"], download=lambda _url: json.dumps(document).encode())
        assert pem == _pem(key)
    assert document["assertionMethod"] == [first["id"], second["id"]]


def test_did_web_and_status_entries_agree_with_openbadgeslib() -> None:
    assert did_web(ISSUING.root) == did_web_from_url(ISSUING.root) == (
        "did:web:wbl.example.org%3A8443:district")
    key = issuer_key("District 42")
    assert ISSUER.removesuffix(key) == "did:web:wbl.example.org%3A8443:district:issuers:"
    entry = ISSUING.status_entry("District 42", 131_072 + 5)
    assert entry["statusListCredential"].endswith("/status/1") and entry["statusListIndex"] == "5"
    with pytest.raises(ValueError):
        did_web("http://plain.example.org")


def test_a_status_list_is_a_signed_jwt_whose_bits_openbadgeslib_reads() -> None:
    import jwt

    key = Ed25519PrivateKey.generate()
    url = ISSUING.status_list_url("District 42", 0)
    token = signing.status_list_jwt(key, ISSUER, url, [0, 7, 131_071])
    header = jwt.get_unverified_header(token)
    assert header["kid"] == f"{ISSUER}#{signing.kid_of(key.public_key())}"
    payload = jwt.decode(token, key.public_key(), algorithms=["EdDSA"])
    assert payload["iss"] == payload["issuer"] == ISSUER and payload["jti"] == url
    bits = decode_encoded_list(payload["credentialSubject"]["encodedList"])
    assert len(bits) * 8 == 131_072 and set_indices(bits) == {0, 7, 131_071}


def test_the_identity_hash_is_salted_per_document_and_checkable() -> None:
    one, two = identity("ana", "credential-1"), identity("ana", "credential-2")
    assert one["identityHash"] != two["identityHash"]
    digest = hashlib.sha256(("ana" + one["salt"]).encode()).hexdigest()
    assert one["identityHash"] == f"sha256${digest}" and "ana" not in str(one)


def test_revoke_and_reissue_need_a_reason_a_credential_in_force_and_authority() -> None:
    placement = active()
    _evaluate(placement, stage="final", scores={"Teamwork": 4})
    first = placement.issue_credential(actor=COORDINATOR, kind="Fieldwork",
                                       issuer="District 9", issued_on=TODAY, today=TODAY)
    with refused(placement, NotPermitted, "coordinator-required"):
        placement.revoke_credential(actor=LEARNER, credential_id=first, reason="x",
                                    revoked_on=TODAY, today=TODAY)
    with refused(placement, RuleViolated, "reason-required"):
        placement.revoke_credential(actor=COORDINATOR, credential_id=first, reason=" ",
                                    revoked_on=TODAY, today=TODAY)
    with refused(placement, UnknownAggregate, "unknown-credential"):
        placement.revoke_credential(actor=COORDINATOR, credential_id="nope", reason="x",
                                    revoked_on=TODAY, today=TODAY)
    with refused(placement, RuleViolated, "dates-reversed"):
        placement.reissue_credential(actor=COORDINATOR, credential_id=first, reason="x",
                                     reissued_on=TODAY, today=TODAY,
                                     expires_on=date(2000, 1, 1))
    second = placement.reissue_credential(actor=COORDINATOR, credential_id=first,
                                          reason="Name corrected", reissued_on=TODAY,
                                          today=TODAY)
    old, new = placement.credentials
    assert old.replaced_by == second and not old.in_force and new.in_force
    assert (new.kind, new.issuer) == (old.kind, old.issuer)
    with refused(placement, WrongState, "credential-reissued"):
        placement.revoke_credential(actor=COORDINATOR, credential_id=first, reason="x",
                                    revoked_on=TODAY, today=TODAY)
    placement.revoke_credential(actor=COORDINATOR, credential_id=second,
                                reason="Issued in error", revoked_on=TODAY, today=TODAY)
    assert placement.credentials[1].revocation_reason == "Issued in error"
    with refused(placement, WrongState, "credential-revoked"):
        placement.reissue_credential(actor=COORDINATOR, credential_id=second, reason="x",
                                     reissued_on=TODAY, today=TODAY)


def test_a_badge_with_an_alignment_and_its_clr_sign_validate_and_verify() -> None:
    """Built by the transcript's pure functions from a folded experience (O*NET code
    included), signed, then checked by the official OB 3.0 JSON Schema and openbadgeslib."""
    from jsonschema import Draft201909Validator, FormatChecker
    from openbadgeslib.ob3.clr import bundled_clr_contexts

    from projections import transcript
    from tests.unit.projections.test_folds import fold, internship_story

    state = fold(transcript.evolve, internship_story())["p-1"]
    exp = transcript.experience_of({**transcript._to_row(state), "title": "Intern",
                                    "employer_name": "Acme Robotics",
                                    "occupation_code": "17-3024.01"})
    key = Ed25519PrivateKey.generate()
    document = transcript.open_badge(exp, exp.credentials[0], ISSUING)
    assert document["credentialSubject"]["achievement"]["alignment"][0]["targetType"] == (
        "ext:ONetOccupation")
    signed = sign(document, key, ISSUING.issuer_did(exp.credentials[0]["issuer"]))
    schema = json.loads((ROOT / "tests/fixtures/ob3/ob_v3p0_achievementcredential_schema.json"
                         ).read_text())
    Draft201909Validator(schema, format_checker=FormatChecker()).validate(signed)
    verify_data_integrity_proof(signed, _pem(key))
    record = transcript.clr("ana", [exp], [signed], ISSUING, issuer="wbl-ledger",
                            issued_at="2026-06-01T10:00:00+00:00",
                            clr_id="urn:uuid:0f0e0d0c-0b0a-4090-8070-605040302010")
    signed_clr = sign(record, key, ISSUING.issuer_did("wbl-ledger"))
    verify_data_integrity_proof(signed_clr, _pem(key), extra_contexts=bundled_clr_contexts())
    assert signed_clr["validFrom"] == "2026-06-01T10:00:00Z"
    assert signed_clr["credentialSubject"]["association"] == [{
        "type": "Association", "associationType": "isPartOf",
        "sourceId": document["credentialSubject"]["achievement"]["id"],
        "targetId": "urn:wbl-ledger:experience:p-1"}]


def test_the_credential_read_model_is_a_fold_applied_twice_to_the_same_rows() -> None:
    """Issued, reissued, revoked: the status list sees both old credentials withdrawn; a
    second delivery of every event changes nothing (invariant 3)."""
    from sqlalchemy import MetaData, create_engine, select

    from projections import transcript
    from tests.unit.projections.test_folds import env, internship_story

    story = internship_story()
    last = story[-1]
    coordinator = {"actor_id": "coord-1", "actor_role": "coordinator",
                   "business_date": "2026-05-23"}
    issued = next(e for e in story if e.event_type == "CredentialIssued")
    first = issued.data["credential_id"]
    v, p = last.aggregate_version, last.position
    more = [
        env("CredentialReissued", {**coordinator, "credential_id": first,
                                   "new_credential_id": "c-2", "kind": "Fieldwork",
                                   "issuer": issued.data["issuer"], "expires_on": None,
                                   "reason": "Name corrected"}, v + 1, p + 1),
        env("CredentialRevoked", {**coordinator, "credential_id": "c-2",
                                  "reason": "Issued in error"}, v + 2, p + 2),
    ]
    engine = create_engine("sqlite://")
    tables = transcript.make_tables(MetaData())
    for table in tables.all:
        table.create(engine)
    projection = transcript.TranscriptProjection(tables)
    snapshots = []
    for events in ([*story, *more], [issued, *more]):  # then the credential events again
        with engine.begin() as conn:
            projection.apply_many(conn, events)
            snapshots.append(sorted(map(tuple, conn.execute(select(tables.credential)))))
    assert snapshots[0] == snapshots[1]
    key = issuer_key(issued.data["issuer"])
    with engine.connect() as conn:
        assert projection.withdrawn_indices(conn, key, 0, 131_071) == sorted(
            [issued.position, p + 1])
        (experience,) = projection.experiences(conn, learner_id="ana")
    statuses = {c["credential_id"]: (c["status"], c.get("status_reason"))
                for c in experience.credentials}
    assert statuses == {first: ("reissued", "Name corrected"),
                        "c-2": ("revoked", "Issued in error")}
    assert experience.credentials_in_force == []

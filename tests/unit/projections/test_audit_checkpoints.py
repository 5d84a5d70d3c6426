"""Audit checkpoints, pure (decision 041): kids are RFC 7638 thumbprints, signatures cover
every field, a rewrite consistent with itself disagrees with a checkpoint, and the first
rewritten entry is found against the original events."""

from __future__ import annotations

from dataclasses import replace

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from projections import audit_trail as audit
from projections.audit_checkpoints import (
    KeyRing,
    first_rewritten,
    kid_of,
    parse,
    public_key_from_x,
    sign,
)
from tests.unit.projections.history import generate
from tests.unit.projections.test_folds import heads_of, trail


def test_kid_is_the_rfc7638_thumbprint() -> None:
    # RFC 8037 appendix A.2 / A.3: the Ed25519 public key and its JWK thumbprint.
    key = public_key_from_x("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
    assert kid_of(key) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def test_signature_covers_every_field_and_names_its_key() -> None:
    key, retired, stranger = (Ed25519PrivateKey.generate() for _ in range(3))
    ring = KeyRing(key.public_key(), [retired.public_key()])
    good = sign(key, position=7, global_hash="a" * 64, count=7, created_at="2026-12-01")
    assert parse(good.to_json()) == good and ring.refusal(good) is None
    old = sign(retired, position=3, global_hash="b" * 64, count=3, created_at="2026-11-01")
    assert ring.refusal(old) is None  # a retired key still verifies
    for changed in (replace(good, position=8), replace(good, global_hash="c" * 64),
                    replace(good, count=6), replace(good, created_at="2026-12-02")):
        assert "does not verify" in (ring.refusal(changed) or "")
    forged = replace(sign(stranger, position=7, global_hash="a" * 64, count=7,
                          created_at="2026-12-01"), kid=good.kid)
    assert "does not verify" in (ring.refusal(forged) or "")
    unknown = sign(stranger, position=7, global_hash="a" * 64, count=7, created_at="x")
    assert not ring.knows(unknown) and "unknown key" in (ring.refusal(unknown) or "")


def test_a_self_consistent_rewrite_disagrees_with_a_checkpoint() -> None:
    events = generate(20, seed=4).envelopes
    rows = trail(events)
    by_position = {r["position"]: r for r in rows}
    anchors = [audit.Anchor(p, by_position[p]["global_hash"], p, f"at {p}")
               for p in (5, 12, len(rows))]
    assert audit.verify_rows(rows, *heads_of(rows), anchors).anchored == 3
    victim = next(e for e in events if e.position > 6)
    altered = replace(victim, recorded_at=victim.recorded_at.replace(year=2020))
    rewritten = trail([altered if e is victim else e for e in events])
    assert audit.verify_rows(rewritten, *heads_of(rewritten)).ok  # consistent with itself
    report = audit.verify_rows(rewritten, *heads_of(rewritten), anchors)
    assert report.problem is not None and report.problem.kind == "rewritten"
    assert report.problem.since == 5 and report.problem.position >= victim.position
    originals = {r["position"]: r["event"].encode() for r in rows}
    found = first_rewritten(rewritten[5:report.problem.position], originals, 5,
                            report.problem.position or 0)
    assert found is not None
    assert (found.position, found.aggregate_id, found.event_type) == (
        victim.position, victim.aggregate_id, victim.event_type)


def test_a_checkpoint_beyond_the_chain_means_entries_were_dropped() -> None:
    rows = trail(generate(10, seed=5).envelopes)
    last = rows[-1]
    anchors = [audit.Anchor(last["position"], last["global_hash"], last["position"], "x")]
    shortened = rows[:-1]
    report = audit.verify_rows(shortened, *heads_of(shortened), anchors)
    assert report.problem is not None and report.problem.kind == "dropped"

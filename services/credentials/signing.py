"""Data Integrity proofs (``eddsa-rdfc-2022``), DID documents and status lists.

Why Data Integrity rather than only VC-JWT: a CLR 2.0 embeds each credential by value, and
only an embedded proof travels with a credential inside another one; a JWT cannot. The
proof follows W3C vc-di-eddsa: the document and the proof options are each canonicalised
with RDFC-1.0 (pyld's URDNA2015, the same algorithm), hashed with SHA-256, and the two
hashes, options first, are signed with Ed25519.

Contexts are pinned copies (``contexts/``, with their source and SHA-256 in
docs/credentials.md); nothing is fetched at signing or verification time. A term no
context defines is an error (pyld reports every key expansion drops), never silently
left out, so a document cannot carry unsigned members that look signed.

The status lists are VC-JWTs (EdDSA, PyJWT): a verifier checks the list's own signature
before trusting its bits, so a compromised host cannot quietly un-revoke a credential.
"""

from __future__ import annotations

import copy
import gzip
import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import jwt
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from pyld import jsonld

from projections.audit_checkpoints import KeyRing, b64url, kid_of, raw_public
from projections.transcript import (
    CLR_CONTEXT,
    OB_CONTEXT,
    STATUS_LIST_BITS,
    VC_CONTEXT,
)

CONTEXT_FILES = {
    VC_CONTEXT: "credentials-v2.json",
    OB_CONTEXT: "ob-v3p0-context-3.0.3.json",
    CLR_CONTEXT: "clr_context_2.0.1.json",
}
DID_CONTEXTS = ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"]
CRYPTOSUITE = "eddsa-rdfc-2022"
STATUS_LIST_LIFETIME = timedelta(hours=24)
"""A status list says how long it stands (``validUntil``): a copy replayed later than that
cannot hide a revocation made since."""


class UnknownContext(ValueError):
    """A document names a JSON-LD context this service does not pin."""


@cache
def _context(url: str) -> dict[str, Any]:
    name = CONTEXT_FILES.get(url)
    if name is None:
        raise UnknownContext(f"context {url!r} is not one this service pins")
    loaded: dict[str, Any] = json.loads((Path(__file__).parent / "contexts" / name).read_text())
    return loaded


def _loader(url: str, options: Any = None) -> dict[str, Any]:
    return {"contextUrl": None, "documentUrl": url, "document": _context(url)}


class UndefinedTerm(ValueError):
    """A member no pinned context defines: JSON-LD would drop it from what is signed."""


def canonical(document: Mapping[str, Any]) -> str:
    """RDFC-1.0 N-Quads of ``document``, contexts pinned, undefined terms refused.

    JSON-LD expansion silently drops a key no context defines, so a proof would not cover
    it while the JSON still shows it (a misspelt ``awardedDatf``, a smuggled claim): pyld
    reports every dropped key, and any is an error, at signing and at verification."""
    dropped: list[str | None] = []
    processor = jsonld.JsonLdProcessor(on_property_dropped=dropped.append)
    normalized: str = processor.normalize(dict(document), {
        "algorithm": "URDNA2015", "format": "application/n-quads",
        "documentLoader": _loader})
    if dropped:
        names = ", ".join(sorted({str(d) for d in dropped}))
        raise UndefinedTerm(f"no pinned context defines {names}")
    return normalized


def _hash_data(unsecured: Mapping[str, Any], options: Mapping[str, Any]) -> bytes:
    config = {**options, "@context": unsecured.get("@context")}
    return (hashlib.sha256(canonical(config).encode()).digest()
            + hashlib.sha256(canonical(unsecured).encode()).digest())


def utc_now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def sign(document: Mapping[str, Any], key: Ed25519PrivateKey, issuer_did: str,
         created: str | None = None) -> dict[str, Any]:
    """``document`` with a DataIntegrityProof by ``key``, named as a verification method of
    ``issuer_did`` (``<did>#<RFC 7638 thumbprint>``)."""
    if "proof" in document:
        raise ValueError("the document already carries a proof")
    options = {
        "type": "DataIntegrityProof", "cryptosuite": CRYPTOSUITE,
        "created": created or utc_now(),
        "verificationMethod": f"{issuer_did}#{kid_of(key.public_key())}",
        "proofPurpose": "assertionMethod",
    }
    signature = key.sign(_hash_data(document, options))
    signed = copy.deepcopy(dict(document))
    signed["proof"] = {**options, "proofValue": "z" + base58btc(signature)}
    return signed


class ProofRefused(ValueError):
    """Why a proof does not verify, in words a person reads."""


def check_proof(document: Mapping[str, Any], key: Ed25519PublicKey) -> None:
    """Raise :class:`ProofRefused` unless ``document``'s proof is ``key``'s signature of
    exactly this document."""
    proof = document.get("proof")
    if not isinstance(proof, Mapping):
        raise ProofRefused("the credential has no proof (it is not signed)")
    value = proof.get("proofValue")
    if not isinstance(value, str) or not value.startswith("z"):
        raise ProofRefused("the proof has no proofValue (base58btc multibase)")
    try:
        signature = base58btc_decode(value[1:])
    except ValueError as error:
        raise ProofRefused(f"the proofValue is not base58btc: {error}") from None
    unsecured = {k: v for k, v in document.items() if k != "proof"}
    options = {k: v for k, v in proof.items() if k != "proofValue"}
    try:
        data = _hash_data(unsecured, options)
    except UnknownContext as error:
        raise ProofRefused(str(error)) from None
    except UndefinedTerm as error:
        raise ProofRefused("the document is not the JSON-LD its contexts define (an "
                           f"undefined or misspelt term: {error})") from None
    except jsonld.JsonLdError as error:
        raise ProofRefused("the document is not the JSON-LD its contexts define (an "
                           f"undefined or misspelt term?): {_lead(error)}") from None
    try:
        key.verify(signature, data)
    except InvalidSignature:
        raise ProofRefused("the signature does not match the document: it was changed "
                           "after it was signed") from None


def _lead(error: Exception) -> str:
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return text[:200]


# -- multibase (base58btc) and Multikey ------------------------------------------------------

_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_ED25519_PUB = b"\xed\x01"  # multicodec ed25519-pub


def base58btc(raw: bytes) -> str:
    number = int.from_bytes(raw, "big")
    out = ""
    while number:
        number, digit = divmod(number, 58)
        out = _ALPHABET[digit] + out
    return "1" * (len(raw) - len(raw.lstrip(b"\0"))) + out


def base58btc_decode(text: str) -> bytes:
    number = 0
    for char in text:
        index = _ALPHABET.find(char)
        if index < 0:
            raise ValueError(f"{char!r} is not a base58 digit")
        number = number * 58 + index
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\0" * (len(text) - len(text.lstrip("1"))) + body


def multikey(key: Ed25519PublicKey) -> str:
    return "z" + base58btc(_ED25519_PUB + raw_public(key))


def did_document(issuer_did: str, ring: KeyRing) -> dict[str, Any]:
    """The issuer's DID document: every key that ever signed for it, current first (a
    verifier given no key id takes the first), each a Multikey verification method."""
    keys = sorted(ring.keys.values(), key=lambda k: k is not ring.current)
    methods = [{"id": f"{issuer_did}#{kid_of(k)}", "type": "Multikey",
                "controller": issuer_did, "publicKeyMultibase": multikey(k)} for k in keys]
    return {"@context": DID_CONTEXTS, "id": issuer_did, "verificationMethod": methods,
            "assertionMethod": [m["id"] for m in methods]}


# -- status lists ----------------------------------------------------------------------------


def encoded_list(set_bits: Iterable[int]) -> str:
    """W3C Bitstring Status List ``encodedList``: multibase base64url (``u``) of the GZIP of
    ``STATUS_LIST_BITS`` bits, index 0 the first byte's highest bit."""
    bits = bytearray(STATUS_LIST_BITS // 8)
    for index in set_bits:
        bits[index // 8] |= 0x80 >> (index % 8)
    return "u" + b64url(gzip.compress(bytes(bits), mtime=0))


def _stamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def status_list_jwt(key: Ed25519PrivateKey, issuer_did: str, url: str,
                    revoked_bits: Iterable[int], now: datetime | None = None) -> str:
    """The issuer's revocation list as a signed ``BitstringStatusListCredential`` (VC-JWT:
    the credential is the JWT payload, with ``iss``, ``nbf``, ``exp`` and ``jti``)."""
    moment = (now or datetime.now(UTC)).replace(microsecond=0)
    until = moment + STATUS_LIST_LIFETIME
    payload = {
        "@context": [VC_CONTEXT],
        "id": url,
        "type": ["VerifiableCredential", "BitstringStatusListCredential"],
        "issuer": issuer_did,
        "validFrom": _stamp(moment),
        "validUntil": _stamp(until),
        "credentialSubject": {"id": f"{url}#list", "type": "BitstringStatusList",
                              "statusPurpose": "revocation",
                              "encodedList": encoded_list(revoked_bits)},
        "iss": issuer_did, "jti": url, "iat": int(moment.timestamp()),
        "nbf": int(moment.timestamp()), "exp": int(until.timestamp()),
    }
    return jwt.encode(payload, key, algorithm="EdDSA", headers={
        "kid": f"{issuer_did}#{kid_of(key.public_key())}", "typ": "vc+jwt"})

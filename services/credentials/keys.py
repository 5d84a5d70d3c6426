"""The key that signs credentials, and the public keys a verifier may meet.

The signing key is a secret like the JWT and audit keys: ``WBL_CREDENTIAL_SIGNING_KEY`` in
production (from the secret store), a key file in the data folder on the embedded default
(``infra.key_files.kept_key``, so `wbl run` and its children agree on one key). It is never
logged, never put in an event or a credential: a proof names its key by its RFC 7638
thumbprint, and the issuers' DID documents publish the public half.

Rotation keeps credentials already issued verifiable: the retired key's public half stays
published (``WBL_CREDENTIAL_RETIRED_PUBLIC_KEYS``; on the embedded default, `wbl credentials
rotate-key` appends it to ``credential-signing-retired.pub`` beside the key file).
"""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from infra.key_files import kept_key
from infra.settings import Settings
from projections.audit_checkpoints import KeyRing, b64url, public_key_from_x, raw_public

KEY_FILE = "credential-signing.key"
RETIRED_FILE = "credential-signing-retired.pub"


def _decode_private(text: str) -> Ed25519PrivateKey:
    text = text.strip()
    raw = base64.urlsafe_b64decode(
        text.replace("+", "-").replace("/", "_") + "=" * (-len(text) % 4))
    if len(raw) != 32:
        raise ValueError("the credential signing key must be 32 bytes (base64)")
    return Ed25519PrivateKey.from_private_bytes(raw)


def signing_key(settings: Settings) -> Ed25519PrivateKey:
    """``WBL_CREDENTIAL_SIGNING_KEY``, else the key file in the data folder (made on first
    use by whichever process comes first)."""
    if settings.credential_signing_key is not None:
        return _decode_private(settings.credential_signing_key.get_secret_value())
    path = Path(settings.data_dir) / KEY_FILE
    return _decode_private(kept_key(path, base64.b64encode(os.urandom(32))).decode("ascii"))


def retired_public_keys(settings: Settings) -> list[Ed25519PublicKey]:
    listed = (settings.credential_retired_public_keys or "").split(",")
    path = Path(settings.data_dir) / RETIRED_FILE
    if settings.credential_signing_key is None and path.exists():
        listed += path.read_text().split()
    return [public_key_from_x(x) for x in listed if x.strip()]


def key_ring(settings: Settings) -> KeyRing:
    """The current key's public half first, then the retired ones: what the DID documents
    publish and what a proof may name."""
    return KeyRing(signing_key(settings).public_key(), retired_public_keys(settings))


def rotate(settings: Settings) -> tuple[str, str]:
    """Embedded default only: retire the key file's key (its public half is kept in
    ``credential-signing-retired.pub``) and make a new one. Returns the public keys (JWK
    ``x``) of the old and the new key. Processes already running keep signing with the old
    key until they restart; what they sign still verifies (the old key stays published)."""
    if settings.credential_signing_key is not None:
        raise ValueError("WBL_CREDENTIAL_SIGNING_KEY is set: rotate it in the secret store and "
                         "list the old public key in WBL_CREDENTIAL_RETIRED_PUBLIC_KEYS")
    old = signing_key(settings)
    old_x = b64url(raw_public(old.public_key()))
    folder = Path(settings.data_dir)
    with (folder / RETIRED_FILE).open("a") as retired:
        retired.write(old_x + "\n")
    new = Ed25519PrivateKey.generate()
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
    )

    raw = new.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    aside = folder / f".{KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, base64.b64encode(raw))
    finally:
        os.close(fd)
    os.replace(aside, folder / KEY_FILE)
    return old_x, b64url(raw_public(new.public_key()))

"""Signed credentials (decision 046): every Open Badges 3.0 ``OpenBadgeCredential`` and CLR
2.0 ``ClrCredential`` the ledger hands out carries a Data Integrity proof
(``eddsa-rdfc-2022``) by its issuer, whose keys are published at a did:web address the API
serves; revocation goes through W3C Bitstring Status Lists, themselves signed (VC-JWT).

- ``keys``: the signing key (a secret like the others) and the published key ring.
- ``signing``: JSON-LD canonicalisation with pinned contexts, proofs, DID documents and
  status lists.
- ``verify``: what ``wbl credentials verify`` and ``POST /credentials/verify`` answer.
- ``issuing``: the service the API and the CLI call.
"""

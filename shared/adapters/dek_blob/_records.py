"""Which blobs a scan for one key returns, and how a blob's wrap becomes a ``DekRecord``.

A blob belongs to key ``K`` when its ``KeyId`` is a version of ``K`` under any spelling
(Key Vault names are case-insensitive: ``/keys/Orders-KEK`` is ``/keys/orders-kek``). A blob
whose metadata is too broken to name a key at all (bad JSON, no ``KeyId``) is returned by
every scan with its problem set: it may be one of ours, and reporting it beats skipping it silently.
"""

from __future__ import annotations

from shared.adapters.dek_blob._format import BlobWrap, protocol_prefix
from shared.stores._common import fold_key_ref, split_key_id
from shared.stores._protocol import DekRecord


def claims(wrap: BlobWrap, folded_key_ref: str) -> bool:
    """Whether a scan for the key ``folded_key_ref`` (``fold_key_ref``) must return this blob."""
    if not wrap.key_id:
        return wrap.problem is not None
    split = split_key_id(wrap.key_id)
    if split is not None:
        return split[0].lower() == folded_key_ref
    return fold_key_ref(wrap.key_id) == folded_key_ref


def blob_record(ref: str, container: str, etag: str, wrap: BlobWrap) -> DekRecord:
    problem = wrap.problem
    if problem is None and split_key_id(wrap.key_id) is None:
        problem = f"key id {wrap.key_id!r} is not a versioned key id"
    sound = problem is None
    return DekRecord(
        ref=ref,
        partition=container,
        etag=etag,
        key_id=wrap.key_id,
        algorithm=wrap.algorithm if sound else None,
        wrapped=wrap.wrapped if sound else b"",
        kcv=None,
        material_prefix=protocol_prefix(wrap.protocol) if sound else b"",
        problem=problem,
    )


def same_etag(first: str, second: str) -> bool:
    """Listings give ETags bare, response headers quoted: compare the values."""
    return first.strip('"') == second.strip('"')

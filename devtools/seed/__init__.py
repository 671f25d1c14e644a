"""Seed writers for tests, the demo and the benchmarks: DEK records and encrypted blobs.

Development only (never in the deployed package): the app rewraps DEKs, it never makes them.
"""

from devtools.seed._blobs import seed_blobs, upload_encrypted
from devtools.seed._deks import new_dek, open_sealed, seed_deks

__all__ = ["new_dek", "open_sealed", "seed_blobs", "seed_deks", "upload_encrypted"]

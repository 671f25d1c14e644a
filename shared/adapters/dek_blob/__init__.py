"""The Azure Blob DEK store (azure-storage-blob): client-side encryption v2 metadata."""

from shared.adapters.dek_blob._store import BlobDekStore

__all__ = ["BlobDekStore"]

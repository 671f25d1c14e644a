"""The Azure Table DEK store (azure-data-tables): keyward's own envelope records."""

from shared.adapters.dek_table._store import TableDekStore

__all__ = ["TableDekStore"]

"""keyward for applications: encrypt and read records with keyward's envelope.

``from keyward import open_envelope`` (the top-level ``keyward`` package re-exports this
one). This is the composition root for applications, beside the Function App's
(``shared.composition``) and the operator CLI's: it builds the store and Key Vault adapters
an application needs and nothing else. Not deployed with the Function App (``.funcignore``).
"""

from shared.application._open import DEFAULT_KEK_TABLE, DEFAULT_TABLE, open_envelope

__all__ = ["DEFAULT_KEK_TABLE", "DEFAULT_TABLE", "open_envelope"]

"""Key wrap algorithms keyward speaks, named exactly as Key Vault names them."""

from __future__ import annotations

from enum import StrEnum

from shared.errors import UnsupportedAlgorithmError


class WrapAlgorithm(StrEnum):
    """Key Vault ``JsonWebKeyEncryptionAlgorithm`` values keyward uses for key wrap.

    ``RSA-OAEP`` is OAEP with SHA-1 and MGF1-SHA1; ``RSA-OAEP-256`` is SHA-256 with
    MGF1-SHA256 (Key Vault's definitions). ``A256KW`` is RFC 3394 AES key wrap, offered for
    Managed HSM ``oct-HSM`` keys. ``RSA1_5`` exists only so legacy data can be *read*.
    """

    RSA_OAEP_256 = "RSA-OAEP-256"
    RSA_OAEP = "RSA-OAEP"
    A256KW = "A256KW"
    RSA1_5 = "RSA1_5"

    @property
    def is_rsa(self) -> bool:
        return self is not WrapAlgorithm.A256KW

    @classmethod
    def parse(cls, value: str) -> WrapAlgorithm:
        """The algorithm named ``value``; raises UnsupportedAlgorithmError for anything else."""
        try:
            return cls(value)
        except ValueError:
            raise UnsupportedAlgorithmError(f"unknown key wrap algorithm {value!r}") from None


#: What keyward wraps with unless told otherwise.
DEFAULT_WRAP_ALGORITHM = WrapAlgorithm.RSA_OAEP_256


def require_wrap_allowed(algorithm: WrapAlgorithm) -> None:
    """Refuse RSA1_5 for wrapping: PKCS#1 v1.5 is only ever used to read legacy data.

    Raises:
        UnsupportedAlgorithmError: always for RSA1_5.
    """
    if algorithm is WrapAlgorithm.RSA1_5:
        raise UnsupportedAlgorithmError("RSA1_5 is never used to wrap new keys; use RSA-OAEP-256")


def require_unwrap_allowed(algorithm: WrapAlgorithm, *, allow_legacy_rsa1_5: bool) -> None:
    """Refuse RSA1_5 unwrap unless the caller opted in to reading legacy data.

    Raises:
        UnsupportedAlgorithmError: for RSA1_5 when ``allow_legacy_rsa1_5`` is false.
    """
    if algorithm is WrapAlgorithm.RSA1_5 and not allow_legacy_rsa1_5:
        raise UnsupportedAlgorithmError(
            "RSA1_5 unwrap is disabled; enable legacy RSA1_5 reads explicitly to migrate old data"
        )

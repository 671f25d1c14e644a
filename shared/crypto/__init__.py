"""keyward's pure crypto core: data keys, envelope AEAD, key wrap, key ids.

Nothing here imports ``azure``; ``tests/crypto/test_purity.py`` enforces it.
"""

from shared.crypto._algorithms import (
    DEFAULT_WRAP_ALGORITHM,
    WrapAlgorithm,
    require_unwrap_allowed,
    require_wrap_allowed,
)
from shared.crypto._data_key import DEK_SIZE, KCV_SIZE, DataKey, key_check_value
from shared.crypto._envelope import (
    ENVELOPE_VERSION,
    MIN_ENVELOPE_SIZE,
    NONCE_SIZE,
    TAG_SIZE,
    aes256gcm_decrypt,
    aes256gcm_encrypt,
    associated_data,
    open_envelope,
    seal,
)
from shared.crypto._key_id import (
    KEY_VAULT_SUFFIXES,
    MANAGED_HSM_SUFFIXES,
    DevVaultEndpoint,
    KeyId,
    is_valid_key_name,
    is_valid_key_version,
    is_valid_vault_name,
    parse_key_id,
    parse_vault_url,
)
from shared.crypto._local import LocalAesKeyWrapper, LocalRsaWrapper, rsa_public_key_from_jwk
from shared.crypto._vault_allowlist import AllowedVault, VaultAllowList
from shared.crypto._wrapped_key import (
    WRAPPED_KEY_FORMAT_VERSION,
    WrappedKey,
    b64_decode_any,
    b64url_encode,
)
from shared.crypto._wrapper import AsyncKeyWrapper, KeyWrapper, SyncToAsyncWrapper

__all__ = [
    "DEFAULT_WRAP_ALGORITHM",
    "DEK_SIZE",
    "ENVELOPE_VERSION",
    "KCV_SIZE",
    "KEY_VAULT_SUFFIXES",
    "MANAGED_HSM_SUFFIXES",
    "MIN_ENVELOPE_SIZE",
    "NONCE_SIZE",
    "TAG_SIZE",
    "WRAPPED_KEY_FORMAT_VERSION",
    "AllowedVault",
    "AsyncKeyWrapper",
    "DataKey",
    "DevVaultEndpoint",
    "KeyId",
    "KeyWrapper",
    "LocalAesKeyWrapper",
    "LocalRsaWrapper",
    "SyncToAsyncWrapper",
    "VaultAllowList",
    "WrapAlgorithm",
    "WrappedKey",
    "aes256gcm_decrypt",
    "aes256gcm_encrypt",
    "associated_data",
    "b64_decode_any",
    "b64url_encode",
    "is_valid_key_name",
    "is_valid_key_version",
    "is_valid_vault_name",
    "key_check_value",
    "open_envelope",
    "parse_key_id",
    "parse_vault_url",
    "require_unwrap_allowed",
    "require_wrap_allowed",
    "rsa_public_key_from_jwk",
    "seal",
]

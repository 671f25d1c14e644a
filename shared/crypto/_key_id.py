"""Key Vault and Managed HSM key identifiers: parsed, validated, never sliced by hand.

A key id is ``https://{vault}.{suffix}/keys/{name}[/{version}]``. Production accepts only the
Azure suffixes below. Development origins (the local emulator on ``https://127.0.0.1:PORT``)
are accepted only when a caller passes them explicitly, which the settings module does only
from an explicit allow-list entry; there is no default that admits them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from shared.errors import KeyIdError

#: Key Vault DNS suffixes per cloud (public, China, US Government).
KEY_VAULT_SUFFIXES = ("vault.azure.net", "vault.azure.cn", "vault.usgovcloudapi.net")
#: Managed HSM DNS suffixes per cloud.
MANAGED_HSM_SUFFIXES = (
    "managedhsm.azure.net",
    "managedhsm.azure.cn",
    "managedhsm.usgovcloudapi.net",
)

# Vault and HSM names: 3-24 characters, letters, digits and single hyphens, starting with a
# letter and ending with a letter or digit (Azure's naming rules).
_VAULT_NAME = re.compile(r"^[a-zA-Z](?!.*--)[a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$")
# Key names: 1-127 letters, digits and hyphens.
_KEY_NAME = re.compile(r"^[a-zA-Z0-9-]{1,127}$")
# Versions are 32 hexadecimal characters.
_KEY_VERSION = re.compile(r"^[0-9a-fA-F]{32}$")
_MAX_KEY_ID_LENGTH = 2048
# urlsplit silently deletes tabs and newlines anywhere in a URL (bpo-43882), so an id with a
# control character or inner whitespace would parse as a different, valid id: refuse them.
_FORBIDDEN_CHARACTERS = re.compile(r"[\x00-\x20\x7f-\x9f\\]")


@dataclass(frozen=True)
class DevVaultEndpoint:
    """A non-Azure origin explicitly trusted as a vault (the local emulator)."""

    vault_name: str
    managed_hsm: bool = False


@dataclass(frozen=True)
class KeyId:
    """A parsed key identifier.

    Attributes:
        vault_url: ``https://host[:port]``, no trailing slash.
        vault_name: the vault's (or Managed HSM's) name.
        name: the key name.
        version: the key version, or ``None`` for an unversioned id.
        managed_hsm: whether the key lives in a Managed HSM.
    """

    vault_url: str
    vault_name: str
    name: str
    version: str | None
    managed_hsm: bool = False

    @property
    def id(self) -> str:
        """The canonical string form."""
        base = f"{self.vault_url}/keys/{self.name}"
        return f"{base}/{self.version}" if self.version else base

    @property
    def unversioned(self) -> KeyId:
        return KeyId(self.vault_url, self.vault_name, self.name, None, self.managed_hsm)

    @property
    def key_ref(self) -> str:
        """The unversioned id, the identity of a key across its versions."""
        return self.unversioned.id

    def with_version(self, version: str) -> KeyId:
        if not is_valid_key_version(version):
            raise KeyIdError(f"key version {version!r} is not 32 hexadecimal characters")
        return KeyId(self.vault_url, self.vault_name, self.name, version.lower(), self.managed_hsm)

    def same_key(self, other: KeyId) -> bool:
        """Whether both ids name the same key (any versions).

        Key Vault object identifiers compare case-insensitively ("always compare them as
        case-insensitive strings", Azure's key vault documentation): ``/keys/MyKey`` and
        ``/keys/mykey`` are one key. Hosts are already lower-cased by the parser.
        """
        return self.key_ref.lower() == other.key_ref.lower()

    def __str__(self) -> str:
        return self.id


def is_valid_vault_name(name: str) -> bool:
    return isinstance(name, str) and bool(_VAULT_NAME.fullmatch(name))


def is_valid_key_name(name: str) -> bool:
    return isinstance(name, str) and bool(_KEY_NAME.fullmatch(name))


def is_valid_key_version(version: str) -> bool:
    """Whether ``version`` is a Key Vault key version: 32 hexadecimal characters."""
    return isinstance(version, str) and bool(_KEY_VERSION.fullmatch(version))


def parse_vault_url(
    value: str, *, dev_origins: Mapping[str, DevVaultEndpoint] | None = None
) -> tuple[str, str, bool]:
    """Validate a vault URL; returns (vault_url, vault_name, managed_hsm).

    Raises:
        KeyIdError: not https, an untrusted host, a bad name, or extra path/query parts.
    """
    if not isinstance(value, str) or not value:
        raise KeyIdError("vault URL is empty")
    if len(value) > _MAX_KEY_ID_LENGTH:
        raise KeyIdError("vault URL is too long")
    if _FORBIDDEN_CHARACTERS.search(value.strip()):
        raise KeyIdError(f"vault URL {value!r} contains whitespace or control characters")
    parts = urlsplit(value.strip())
    if parts.path not in ("", "/") or "?" in value or "#" in value:
        raise KeyIdError(f"vault URL {value!r} must be just https://host")
    return _check_origin(parts.scheme, parts.netloc, value, dev_origins)


def _check_origin(
    scheme: str,
    netloc: str,
    original: str,
    dev_origins: Mapping[str, DevVaultEndpoint] | None,
) -> tuple[str, str, bool]:
    if scheme.lower() != "https":
        raise KeyIdError(f"{original!r}: key ids must use https")
    if "@" in netloc:
        raise KeyIdError(f"{original!r}: user information is not allowed in a vault URL")
    origin = f"https://{netloc.lower()}"
    if dev_origins and origin in dev_origins:
        endpoint = dev_origins[origin]
        return origin, endpoint.vault_name, endpoint.managed_hsm
    host = netloc.lower()
    if host.endswith(":443"):
        host = host[: -len(":443")]
    if ":" in host:
        raise KeyIdError(f"{original!r}: Azure vault hosts do not take a port")
    for suffixes, managed_hsm in ((KEY_VAULT_SUFFIXES, False), (MANAGED_HSM_SUFFIXES, True)):
        for suffix in suffixes:
            if host.endswith("." + suffix):
                vault_name = host[: -len(suffix) - 1]
                if not is_valid_vault_name(vault_name):
                    raise KeyIdError(f"{original!r}: {vault_name!r} is not a valid vault name")
                return f"https://{host}", vault_name, managed_hsm
    raise KeyIdError(
        f"{original!r}: host is not a Key Vault or Managed HSM host "
        f"(*.{', *.'.join(KEY_VAULT_SUFFIXES + MANAGED_HSM_SUFFIXES)})"
    )


def parse_key_id(
    value: str,
    *,
    require_version: bool = True,
    dev_origins: Mapping[str, DevVaultEndpoint] | None = None,
) -> KeyId:
    """Parse and validate a key id.

    Args:
        value: the key id string.
        require_version: refuse unversioned ids (everything that wraps needs a version).
        dev_origins: explicitly trusted non-Azure origins, keyed by ``https://host:port``.

    Raises:
        KeyIdError: anything that is not a well-formed key id on a trusted host.
    """
    if not isinstance(value, str) or not value.strip():
        raise KeyIdError("key id is empty")
    if len(value) > _MAX_KEY_ID_LENGTH:
        raise KeyIdError("key id is too long")
    if _FORBIDDEN_CHARACTERS.search(value.strip()):
        raise KeyIdError(f"{value!r}: a key id has no whitespace, control characters or '\\'")
    if "?" in value or "#" in value:
        # Even an empty "?" or "#": urlsplit would drop it and accept a different string.
        raise KeyIdError(f"{value!r}: a key id has no query or fragment")
    parts = urlsplit(value.strip())
    vault_url, vault_name, managed_hsm = _check_origin(
        parts.scheme, parts.netloc, value, dev_origins
    )
    segments = parts.path.split("/")
    # "/keys/name[/version]" splits to ["", "keys", name, (version)]
    if len(segments) not in (3, 4) or segments[0] != "" or segments[1] != "keys":
        raise KeyIdError(f"{value!r}: expected a path /keys/{{name}}[/{{version}}]")
    name = segments[2]
    if not is_valid_key_name(name):
        raise KeyIdError(f"{value!r}: {name!r} is not a valid key name")
    version: str | None = segments[3] if len(segments) == 4 else None
    if version == "":
        version = None
    if version is not None and not is_valid_key_version(version):
        raise KeyIdError(f"{value!r}: version {version!r} is not 32 hexadecimal characters")
    if require_version and version is None:
        raise KeyIdError(f"{value!r}: a versioned key id is required here")
    return KeyId(vault_url, vault_name, name, version.lower() if version else None, managed_hsm)

"""A throwaway CA and a loopback server certificate, made fresh at each start (by trustme).

Why our own CA instead of a self-signed leaf: the Azure SDKs verify TLS against a CA bundle
(``connection_verify=`` / ``REQUESTS_CA_BUNDLE``), and a CA lets every vault port and the main
port share one trust anchor. Nothing in keyward ever switches verification off; clients are
handed this CA file instead. trustme's ECDSA P-256 keys keep handshakes cheap under benchmark
load. The CA's private key stays in memory: a restart makes a new CA (and a new ``ca.pem``).
"""

from __future__ import annotations

import datetime as dt
import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme

#: The server certificate is valid from a day ago (clock skew) for this long.
_VALIDITY = dt.timedelta(days=30)
_ORGANIZATION = "keyward local emulator"


@dataclass(frozen=True)
class TlsMaterial:
    """Paths of the files one emulator start wrote."""

    ca_path: Path
    cert_path: Path
    key_path: Path

    def server_context(self) -> ssl.SSLContext:
        """An SSL context for the aiohttp sites (TLS 1.2+)."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert_path, self.key_path)
        return context


def generate(directory: Path) -> TlsMaterial:
    """Write ``ca.pem`` (the bundle clients trust), ``server.pem`` and ``server.key``.

    The server certificate names ``localhost`` (DNS SAN) and ``127.0.0.1`` (IP SAN);
    ``server.pem`` holds it followed by the CA certificate. The server's private key never
    leaves ``directory`` (created 0700; the key file 0600).
    """
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    now = dt.datetime.now(dt.UTC)
    ca = trustme.CA(
        path_length=0,
        organization_name=_ORGANIZATION,
        organization_unit_name="keyward emulator CA",
    )
    server = ca.issue_cert(
        "localhost",
        "127.0.0.1",
        common_name="localhost",
        organization_name=_ORGANIZATION,
        organization_unit_name="keyward emulator",
        not_before=now - dt.timedelta(days=1),
        not_after=now + _VALIDITY,
    )

    ca_path = directory / "ca.pem"
    cert_path = directory / "server.pem"
    key_path = directory / "server.key"
    ca.cert_pem.write_to_path(ca_path)
    cert_path.write_bytes(server.cert_chain_pems[0].bytes() + ca.cert_pem.bytes())
    key_path.touch(mode=0o600)
    server.private_key_pem.write_to_path(key_path)
    return TlsMaterial(ca_path=ca_path, cert_path=cert_path, key_path=key_path)

"""The emulator's throwaway CA and server certificate (devtools.emulator.tls)."""

from __future__ import annotations

import socket
import ssl
import stat
import threading
from pathlib import Path

import pytest

from devtools.emulator import tls


def _handshake(material: tls.TlsMaterial, server_hostname: str) -> str:
    """One TLS handshake against a loopback server; returns the negotiated version."""
    server_context = material.server_context()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def serve() -> None:
            connection, _ = listener.accept()
            try:
                with server_context.wrap_socket(connection, server_side=True) as wrapped:
                    wrapped.recv(1)
            except (ssl.SSLError, OSError):
                pass

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        client = ssl.create_default_context(cafile=material.ca_path)
        with socket.create_connection(("127.0.0.1", port)) as raw:
            with client.wrap_socket(raw, server_hostname=server_hostname) as wrapped:
                wrapped.sendall(b"x")
                version = wrapped.version()
        thread.join(timeout=5)
    assert version is not None
    return version


def test_writes_the_ca_bundle_and_a_private_server_key(tmp_path: Path) -> None:
    material = tls.generate(tmp_path / "tls")
    assert material.ca_path.read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert material.cert_path.read_text().count("BEGIN CERTIFICATE") == 2  # leaf, then CA
    assert stat.S_IMODE(material.key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(material.ca_path.parent.stat().st_mode) == 0o700
    assert "PRIVATE KEY" not in material.ca_path.read_text()


@pytest.mark.parametrize("name", ["127.0.0.1", "localhost"])
def test_server_certificate_verifies_against_the_ca_for_both_loopback_names(
    tmp_path: Path, name: str
) -> None:
    material = tls.generate(tmp_path / "tls")
    assert _handshake(material, name) in {"TLSv1.2", "TLSv1.3"}


def test_each_start_makes_a_new_ca(tmp_path: Path) -> None:
    """A certificate from an earlier start is not trusted by the next start's bundle."""
    first = tls.generate(tmp_path / "first")
    second = tls.generate(tmp_path / "second")
    assert first.ca_path.read_bytes() != second.ca_path.read_bytes()
    mixed = tls.TlsMaterial(second.ca_path, first.cert_path, first.key_path)
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(mixed, "localhost")

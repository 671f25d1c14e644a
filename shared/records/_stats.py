"""What an envelope has cost: vault calls, cache hits, KEKs created (for tests, benchmarks,
and an application's own metrics). Counters only; nothing here identifies a key."""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass
class EnvelopeStats:
    """Counters since the envelope was opened. ``Envelope.stats`` returns a copy.

    Attributes:
        vault_unwraps: unwrap calls sent to the vault (a DEK in direct mode, a KEK in
            hierarchy mode). The figure revocation and rotation costs are about.
        vault_wraps: wraps under the vault key (local with the public key for RSA, but
            counted: with an ``oct-HSM`` key they are vault calls).
        local_unwraps: DEKs unwrapped locally under a KEK (A256KW), no vault call.
        dek_cache_hits / dek_cache_misses: DEK lookups in the key cache.
        kek_cache_hits / kek_cache_misses: KEK lookups in the key cache.
        keks_created: KEKs this envelope created (first use of a partition).
        mode_reads: reads of the store's mode row (one per mode TTL at most, when busy).
    """

    vault_unwraps: int = 0
    vault_wraps: int = 0
    local_unwraps: int = 0
    dek_cache_hits: int = 0
    dek_cache_misses: int = 0
    kek_cache_hits: int = 0
    kek_cache_misses: int = 0
    keks_created: int = 0
    mode_reads: int = 0

    @property
    def cache_hits(self) -> int:
        return self.dek_cache_hits + self.kek_cache_hits

    @property
    def cache_misses(self) -> int:
        return self.dek_cache_misses + self.kek_cache_misses

    def copy(self) -> EnvelopeStats:
        return EnvelopeStats(**{f.name: getattr(self, f.name) for f in fields(self)})

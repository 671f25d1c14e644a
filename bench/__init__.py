"""keyward's benchmarks (issue 4): not tests; they measure and write ``docs/benchmarks.md``.

``python -m bench`` runs every scenario side by side in one run and rewrites the document;
``python -m bench table --deks 10000`` runs one. Scenarios:

* ``table`` (a): the engine over the Table store against the emulator at Key Vault's
  RSA-2048 software limit (4,000 operations per 10 s) with 20 ms latency: throughput as a
  fraction of keyward's share of it (``KEYWARD_VAULT_SHARE``, default 0.5: 200 of the 400
  unwraps/s), failures, 429s.
* ``naive`` (b): the same workload as a loop over the sync SDK (unwrap, wrap, update, one
  after another), interleaved with (a); the ratio of the engine to it, both with the whole
  vault (the engine at ``vault_share=1.0``).
* ``cpu`` (c): no throttle, no latency: keyward's CPU per DEK over one RSA-2048 OAEP-256
  private-key decrypt measured in the same run; lean and SDK unwrap paths.
* ``memory`` (d): peak RSS of the rewrap process at two sizes (streaming).
* ``blob`` (e): Storage bytes per blob for a client-side encrypted blob, keyward's metadata
  rewrap versus a download and re-upload.
* ``budget`` (f), only when named (``python -m bench budget``; not part of "all"): several
  keyward worker processes sharing one vault's budget beside the vault's own application,
  one of them killed mid-run; then the application alone above its part
  (``bench/_shared_budget.py``).

Azurite and the emulator run as subprocesses, and every measured rewrap runs in a fresh
worker subprocess (``bench._worker``), so CPU time and peak memory are keyward's alone.
"""

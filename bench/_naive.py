"""The baseline of scenario (b): the rewrap as a plain loop over the synchronous SDKs.

For each DEK below the newest version, one after another: ``CryptographyClient.unwrap_key``
(a request to the vault), ``wrap_key`` under the newest version (local: the client holds the
public key), and ``TableClient.update_entity`` (MERGE, If-Match the ETag) with the same
properties keyward writes (new wrap, the previous one kept). No batching, no concurrency, no
KCV check: what a first script would do.
"""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime
from typing import Any

from azure.core import MatchConditions
from azure.data.tables import TableClient, UpdateMode
from azure.keyvault.keys import KeyClient
from azure.keyvault.keys.crypto import CryptographyClient, KeyWrapAlgorithm

from devtools.emulator.credential import EmulatorCredential

_SELECT = ["PartitionKey", "RowKey", "KeyId", "Algorithm", "WrappedKey"]


def naive_job(spec: dict[str, Any]) -> dict[str, Any]:
    world = spec["world"]
    credential = EmulatorCredential(world["object_id"])
    sdk = {"connection_verify": world["ca_path"], "verify_challenge_resource": False}
    key_name = world["key_ref"].rstrip("/").rsplit("/", 1)[-1]
    algorithm = KeyWrapAlgorithm.rsa_oaep_256
    clients: dict[str, CryptographyClient] = {}
    with (
        KeyClient(world["vault_url"], credential, **sdk) as keys,
        TableClient.from_connection_string(world["connection_string"], spec["table"]) as table,
    ):
        target = keys.get_key(key_name)
        assert target.id is not None
        assert target.properties.version is not None
        target_crypto = CryptographyClient(target, credential, **sdk)
        query = f"KeyRef eq '{world['key_ref']}' and KeyVersion ne '{target.properties.version}'"
        done = 0
        cpu, wall = time.process_time(), time.perf_counter()
        for entity in table.query_entities(query, select=_SELECT):
            kid = entity["KeyId"]
            crypto = clients.get(kid)
            if crypto is None:
                crypto = clients[kid] = CryptographyClient(kid, credential, **sdk)
            dek = crypto.unwrap_key(algorithm, base64.b64decode(entity["WrappedKey"])).key
            wrapped = target_crypto.wrap_key(algorithm, dek).encrypted_key
            table.update_entity(
                {
                    "PartitionKey": entity["PartitionKey"],
                    "RowKey": entity["RowKey"],
                    "KeyVersion": target.properties.version,
                    "KeyId": target.id,
                    "Algorithm": algorithm.value,
                    "WrappedKey": base64.b64encode(wrapped).decode(),
                    "PrevKeyId": kid,
                    "PrevAlgorithm": entity["Algorithm"],
                    "PrevWrappedKey": entity["WrappedKey"],
                    "UpdatedAt": datetime.now(UTC),
                },
                mode=UpdateMode.MERGE,
                etag=entity.metadata["etag"],
                match_condition=MatchConditions.IfNotModified,
            )
            done += 1
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        for client in (target_crypto, *clients.values()):
            client.close()
    return {
        "rewrapped": done,
        "wall_seconds": round(wall, 3),
        "cpu_seconds": round(cpu, 3),
        "deks_per_second": round(done / wall, 2) if wall > 0 else 0.0,
    }

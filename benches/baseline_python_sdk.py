"""Baseline for opsync's initial-sync benchmark (benches/sync.rs): the same job done the plain way
with the official 1Password Connect Python SDK (onepasswordconnectsdk, from tests/sdk/python's
requirements): list the vaults, list each vault's items, get every item in full, and write one JSON
file per item. One request at a time, as the SDK's synchronous client does.

Usage: OP_CONNECT_HOST=... OP_CONNECT_TOKEN=... python benches/baseline_python_sdk.py OUT_DIR
Prints one JSON line: {"items": N, "seconds": S, "items_per_s": R}.
"""

import json
import sys
import time
from pathlib import Path

from onepasswordconnectsdk import new_client_from_environment


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(sys.argv[1])
    client = new_client_from_environment()
    started = time.perf_counter()
    count = 0
    for vault in client.get_vaults():
        folder = out / vault.id
        folder.mkdir(parents=True, exist_ok=True)
        for summary in client.get_items(vault.id):
            item = client.get_item_by_id(summary.id, vault.id)
            document = client.sanitize_for_serialization(item)
            (folder / f"{item.id}.json").write_text(json.dumps(document, indent=2) + "\n")
            count += 1
    seconds = time.perf_counter() - started
    print(json.dumps({"items": count, "seconds": seconds, "items_per_s": count / seconds}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

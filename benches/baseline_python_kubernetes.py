"""Baseline for opsync's Kubernetes benchmark (benches/kubernetes.rs): the same job done the plain
way, as a script around the official clients: the 1Password Connect Python SDK
(onepasswordconnectsdk) lists the vaults and their items and gets every item in full, and the
official Kubernetes Python client (kubernetes) writes each as a Secret by server-side apply (one
request per Secret, no ownership check), keyed by field label. One request at a time, as both
synchronous clients do.

Usage: OP_CONNECT_HOST=... OP_CONNECT_TOKEN=... python benches/baseline_python_kubernetes.py \
           SERVER TOKEN CA_FILE NAMESPACE
Prints one JSON line: {"items": N, "seconds": S, "items_per_s": R}.
"""

import base64
import re
import sys
import time

from kubernetes import client as kube
from onepasswordconnectsdk import new_client_from_environment


def key_of(label: str) -> str:
    return re.sub(r"[^-._a-zA-Z0-9]+", "_", label.strip())


def main() -> int:
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    server, token, ca_file, namespace = sys.argv[1:]
    config = kube.Configuration(host=server)
    config.api_key = {"authorization": f"Bearer {token}"}
    config.ssl_ca_cert = ca_file
    core = kube.CoreV1Api(kube.ApiClient(config))
    connect = new_client_from_environment()
    started = time.perf_counter()
    count = 0
    for vault in connect.get_vaults():
        for summary in connect.get_items(vault.id):
            item = connect.get_item_by_id(summary.id, vault.id)
            data = {}
            for field in item.fields or []:
                if field.value is not None and field.label:
                    data.setdefault(key_of(field.label), base64.b64encode(field.value.encode()).decode())
            name = f"{vault.id}.{item.id}"
            body = {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "script"}},
                "type": "Opaque",
                "data": data,
            }
            core.patch_namespaced_secret(
                name,
                namespace,
                body,
                field_manager="script",
                _content_type="application/apply-patch+yaml",
            )
            count += 1
    seconds = time.perf_counter() - started
    print('{"items": %d, "seconds": %f, "items_per_s": %f}' % (count, seconds, count / seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Drives the Kubernetes API server fake (tests/kube_fake) with the official Python client.

Usage: prove.py URL TOKEN CA_FILE NAMESPACE FORBIDDEN_NAMESPACE DEPLOYMENT
(CA_FILE is "" for plain HTTP). Checks what the real API server would answer, exits non-zero
with a message naming the first surprise, and otherwise prints one JSON line of observations.
"""

import base64
import json
import sys

from kubernetes import client
from kubernetes.client.rest import ApiException


def b64(text):
    return base64.b64encode(text.encode()).decode()


def check(condition, what):
    if not condition:
        sys.exit(f"prove.py: {what}")


def expect_error(status, what, call):
    """Runs call, which must fail with HTTP `status`; returns the Status body."""
    try:
        call()
    except ApiException as e:
        check(e.status == status, f"{what}: expected HTTP {status}, got {e.status}: {e.body}")
        body = json.loads(e.body)
        check(body.get("kind") == "Status" and body.get("code") == status,
              f"{what}: not a Status body: {e.body}")
        return body
    sys.exit(f"prove.py: {what}: expected HTTP {status}, the call succeeded")


def main():
    url, token, ca_file, ns, forbidden_ns, deployment = sys.argv[1:7]
    config = client.Configuration(host=url, api_key={"authorization": f"Bearer {token}"})
    if ca_file:
        config.ssl_ca_cert = ca_file
    api = client.ApiClient(config)
    core = client.CoreV1Api(api)
    apps = client.AppsV1Api(api)
    seen = {}

    # Create one Secret with data and one with stringData.
    with_data = client.V1Secret(
        metadata=client.V1ObjectMeta(name="prove-data", labels={"app": "prove", "tier": "db"}),
        data={"password": b64("hunter2")},
    )
    created = core.create_namespaced_secret(ns, with_data, field_manager="prove-create")
    check(created.type == "Opaque", f"type defaults to Opaque, got {created.type}")
    with_strings = client.V1Secret(
        metadata=client.V1ObjectMeta(name="prove-string", labels={"app": "prove"}),
        string_data={"token": "s3cret"},
    )
    core.create_namespaced_secret(ns, with_strings, field_manager="prove-create")
    already = expect_error(409, "creating prove-data again",
                           lambda: core.create_namespaced_secret(ns, with_data))
    seen["already_exists"] = already["reason"]

    # Read them back: stringData comes back as base64 data, and never as stringData.
    read = core.read_namespaced_secret("prove-string", ns)
    check(read.data == {"token": b64("s3cret")}, f"stringData as data: {read.data}")
    check(read.string_data is None, "stringData is never returned")
    seen["string_data_as_data"] = read.data["token"]
    first = core.read_namespaced_secret("prove-data", ns)
    seen["managers_after_create"] = [(m.manager, m.operation) for m in first.metadata.managed_fields]

    # Label selectors.
    both = core.list_namespaced_secret(ns, label_selector="app=prove")
    only_db = core.list_namespaced_secret(ns, label_selector="app=prove,tier")
    seen["listed"] = sorted(s.metadata.name for s in both.items)
    seen["listed_with_tier"] = [s.metadata.name for s in only_db.items]

    # Merge patch, then a replace with the now stale resourceVersion.
    patched = core.patch_namespaced_secret(
        "prove-data", ns,
        {"metadata": {"labels": {"patched": "yes"}}, "data": {"user": b64("admin")}},
        _content_type="application/merge-patch+json")
    check(patched.metadata.labels.get("patched") == "yes", "merge patch adds a label")
    check(patched.data.get("user") == b64("admin"), "merge patch adds a data key")
    check(int(patched.metadata.resource_version) > int(first.metadata.resource_version),
          "a write bumps resourceVersion")
    first.data["password"] = b64("stale")
    stale = expect_error(409, "replace with a stale resourceVersion",
                         lambda: core.replace_namespaced_secret("prove-data", ns, first))
    seen["stale_replace"] = stale["message"]

    # Server-side apply of a different password: the creator owns it.
    apply_body = {"apiVersion": "v1", "kind": "Secret",
                  "metadata": {"name": "prove-data"}, "data": {"password": b64("applied")}}
    conflict = expect_error(409, "apply over another manager's field", lambda: core.patch_namespaced_secret(
        "prove-data", ns, apply_body, field_manager="prove",
        _content_type="application/apply-patch+yaml"))
    seen["apply_conflict"] = {
        "message": conflict["message"],
        "fields": [c["field"] for c in conflict["details"]["causes"]],
    }
    forced = core.patch_namespaced_secret(
        "prove-data", ns, apply_body, field_manager="prove", force=True,
        _content_type="application/apply-patch+yaml")
    check(forced.data["password"] == b64("applied"), "a forced apply sets the value")
    seen["managers_after_force"] = sorted(
        (m.manager, m.operation, json.dumps(m.fields_v1, sort_keys=True))
        for m in forced.metadata.managed_fields)

    # 403 for a namespace the token may not touch.
    forbidden = expect_error(403, "reading in the forbidden namespace",
                             lambda: core.read_namespaced_secret("prove-data", forbidden_ns))
    seen["forbidden"] = forbidden["message"]

    # 422 for an invalid name and for an oversized Secret.
    bad_name = expect_error(422, "an invalid name", lambda: core.create_namespaced_secret(
        ns, client.V1Secret(metadata=client.V1ObjectMeta(name="Bad_Name"), data={})))
    seen["invalid_name"] = [c["field"] for c in bad_name["details"]["causes"]]
    big = base64.b64encode(b"x" * (1024 * 1024 + 1)).decode()
    too_big = expect_error(422, "an oversized Secret", lambda: core.create_namespaced_secret(
        ns, client.V1Secret(metadata=client.V1ObjectMeta(name="prove-big"), data={"blob": big})))
    seen["too_big"] = too_big["message"]

    # Delete, then 404.
    deleted = core.delete_namespaced_secret("prove-string", ns)  # a V1Status, as a dict here
    check(deleted["status"] == "Success", f"delete answers a Success Status: {deleted}")
    gone = expect_error(404, "reading a deleted Secret",
                        lambda: core.read_namespaced_secret("prove-string", ns))
    seen["not_found"] = gone["message"]

    # `kubectl rollout restart`: a strategic merge patch of the pod template's annotations.
    stamp = "2024-05-01T12:00:00Z"
    restarted = apps.patch_namespaced_deployment(deployment, ns, {"spec": {"template": {"metadata": {
        "annotations": {"kubectl.kubernetes.io/restartedAt": stamp}}}}})
    annotations = restarted.spec.template.metadata.annotations
    check(annotations == {"kubectl.kubernetes.io/restartedAt": stamp}, f"restart annotation: {annotations}")
    seen["deployment_generation"] = restarted.metadata.generation

    print(json.dumps(seen, sort_keys=True))


if __name__ == "__main__":
    main()

"""The official Kubernetes Python client against skiff's HTTPS API, through its generated
API classes, then raw requests with bad input. Run by tests/tests/kube_api.rs:
    python kube_client.py KUBECONFIG
Prints one line per check; exits non-zero on the first failure."""

import http.client
import json
import ssl
import sys

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

config.load_kube_config(sys.argv[1])
v1 = client.CoreV1Api()
apps = client.AppsV1Api()
NS = "default"


def check(what, cond, detail=""):
    if not cond:
        print(f"FAILED: {what} {detail}")
        sys.exit(1)
    print(f"ok: {what}")


names = [n.metadata.name for n in v1.list_namespace().items]
check("list namespaces", "kube-system" in names and "default" in names, names)

cm = client.V1ConfigMap(
    metadata=client.V1ObjectMeta(name="py-cm", labels={"from": "python"}),
    data={"a": "1"},
)
created = v1.create_namespaced_config_map(NS, cm)
rv = created.metadata.resource_version
check("create", created.metadata.uid and rv, created.metadata)

patched = v1.patch_namespaced_config_map("py-cm", NS, {"data": {"b": "2"}})
check("patch", patched.data == {"a": "1", "b": "2"}, patched.data)

listed = v1.list_namespaced_config_map(NS, label_selector="from=python")
check("list with a label selector", [i.metadata.name for i in listed.items] == ["py-cm"])

read = v1.read_namespaced_config_map("py-cm", NS)
check("read", read.metadata.resource_version == patched.metadata.resource_version)

v1.delete_namespaced_config_map("py-cm", NS)
try:
    v1.read_namespaced_config_map("py-cm", NS)
    check("read after delete is 404", False)
except ApiException as e:
    check("read after delete is 404", e.status == 404 and json.loads(e.body)["reason"] == "NotFound", e.body)

events = [
    (e["type"], e["object"].metadata.name, e["object"].data)
    for e in watch.Watch().stream(
        v1.list_namespaced_config_map, NS, resource_version=rv, timeout_seconds=2,
        label_selector="from=python",
    )
]
types = [t for t, _, _ in events]
check("watch from the create's revision", types == ["MODIFIED", "DELETED"], events)

for i in range(3):
    v1.create_namespaced_config_map(NS, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name=f"bulk-{i}", labels={"from": "python-bulk"})))
# A dry run answers with what it would delete and deletes nothing.
# (The client's model calls the answer a Status; it is the list, as Kubernetes sends.)
would = json.loads(v1.delete_collection_namespaced_config_map(
    NS, label_selector="from=python-bulk", dry_run="All", _preload_content=False).data)
kept = v1.list_namespaced_config_map(NS, label_selector="from=python-bulk").items
names = sorted(i["metadata"]["name"] for i in would.get("items", []))
check("a dry run of deletecollection deletes nothing",
      len(kept) == 3 and names == ["bulk-0", "bulk-1", "bulk-2"],
      (would, [c.metadata.name for c in kept]))
v1.delete_collection_namespaced_config_map(NS, label_selector="from=python-bulk")
left = v1.list_namespaced_config_map(NS, label_selector="from=python-bulk").items
check("delete a collection", left == [], [c.metadata.name for c in left])

deployments = apps.list_deployment_for_all_namespaces()
check("list deployments in all namespaces", deployments.kind is None or deployments.items is not None)

# Raw requests with bad input, with the client's own credentials.
cfg = client.Configuration.get_default_copy()
host = cfg.host.removeprefix("https://")
ctx = ssl.create_default_context(cafile=cfg.ssl_ca_cert)
ctx.load_cert_chain(cfg.cert_file, cfg.key_file)


def raw(method, path, body=None, headers=None, context=ctx, send_body=True):
    conn = http.client.HTTPSConnection(host, context=context, timeout=10)
    conn.putrequest(method, path)
    for k, v in (headers or {}).items():
        conn.putheader(k, v)
    if body is not None and "Content-Length" not in (headers or {}):
        conn.putheader("Content-Length", str(len(body)))
    conn.endheaders()
    if body is not None and send_body:
        conn.send(body)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    try:
        return r.status, json.loads(data)
    except ValueError:
        return r.status, data


CMS = "/api/v1/namespaces/default/configmaps"
status, s = raw("POST", CMS, b"{not json", {"Content-Type": "application/json"})
check("malformed JSON is 400", status == 400 and s["reason"] == "BadRequest", s)
status, s = raw("POST", CMS, b"x: [", {"Content-Type": "application/yaml"})
check("malformed YAML is 400", status == 400 and s["kind"] == "Status", s)
status, s = raw("POST", CMS, b"a=b", {"Content-Type": "text/plain"})
check("a wrong content type is 415", status == 415 and s["reason"] == "UnsupportedMediaType", s)
status, s = raw("POST", CMS, b"", {"Content-Type": "application/json", "Content-Length": str(64 << 20)}, send_body=False)
check("an oversized body is refused before it is read", status == 413 and s["reason"] == "RequestEntityTooLarge", s)
status, s = raw("GET", "/api/v1/namespaces/default/widgets")
check("an unknown resource is 404", status == 404 and s["kind"] == "Status", s)
status, s = raw("PATCH", CMS + "/missing", b"{}", {"Content-Type": "application/json"})
check("a patch of the wrong type is 415", status == 415, s)
bad_kind = json.dumps({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}}).encode()
status, s = raw("POST", CMS, bad_kind, {"Content-Type": "application/json"})
check("a body of another kind is 400", status == 400, s)
unknown = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "u"}, "dataa": {}}).encode()
status, s = raw("POST", CMS + "?fieldValidation=Strict", unknown, {"Content-Type": "application/json"})
check("an unknown field is 422 under Strict", status == 422 and "dataa" in s["message"], s)
anonymous = ssl.create_default_context(cafile=cfg.ssl_ca_cert)
status, s = raw("GET", "/api/v1/pods", context=anonymous)
check("no client certificate is 401", status == 401 and s["reason"] == "Unauthorized", s)
status, s = raw("GET", "/healthz", context=anonymous)
check("still serving", status == 200 and s == b"ok", s)
left = [c.metadata.name for c in v1.list_namespaced_config_map(NS).items]
check("nothing was written", not {"x", "u", "py-cm"} & set(left), left)
print("python client: all checks passed")

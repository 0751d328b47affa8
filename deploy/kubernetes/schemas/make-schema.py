#!/usr/bin/env python3
"""Writes kubernetes-VERSION-strict.json: the JSON schema definitions of the Kubernetes API
objects deploy/ uses, cut from a Kubernetes release's OpenAPI v2 document (swagger.json).

How the vendored file was made (Kubernetes 1.20.2, the release Debian 12 packages as its
`kubernetes` source package 1.20.5+really1.20.2-1.1+deb12u1):

    apt-get source --download-only kubernetes        # with a deb-src line for bookworm
    tar xzf kubernetes_1.20.5+really1.20.2.orig.tar.gz kubernetes-1.20.2/api/openapi-spec/swagger.json
    deploy/kubernetes/schemas/make-schema.py kubernetes-1.20.2/api/openapi-spec/swagger.json \
        deploy/kubernetes/schemas/kubernetes-1.20.2-strict.json v1.20.2
(the release's swagger.json says "unversioned": the version is the third argument)

What changes on the way, as kubeconform's "-strict" schemas do (openapi2jsonschema):
  - every object with listed properties and no additionalProperties gets
    additionalProperties: false, so a misspelt or misplaced field is an error;
  - IntOrString (ports, targetPort) is a string or an integer, Quantity (cpu: 1, memory: 2Gi)
    a string or a number, as the API server accepts them;
  - descriptions are dropped (the file stays small); only the definitions reachable from the
    kinds below are kept;
  - each kind's apiVersion and kind are pinned to their one value (from
    x-kubernetes-group-version-kind), and the top level lists (apiVersion, kind) -> definition
    (validate.py requires both fields of a document; an embedded object, as a StatefulSet's
    volumeClaimTemplates, may leave them out).
"""
import json
import sys

KINDS = [
    ("v1", "Namespace"), ("v1", "ConfigMap"), ("v1", "Secret"), ("v1", "Service"),
    ("v1", "ServiceAccount"), ("v1", "PersistentVolumeClaim"), ("v1", "Pod"),
    ("apps/v1", "Deployment"), ("apps/v1", "StatefulSet"),
    ("rbac.authorization.k8s.io/v1", "Role"), ("rbac.authorization.k8s.io/v1", "RoleBinding"),
]
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"


def strip(node):
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k == "description" or k.startswith("x-kubernetes-") and k != "x-kubernetes-group-version-kind":
                continue
            out[k] = strip(v)
        if "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(node, list):
        return [strip(v) for v in node]
    return node


def refs(node, acc):
    if isinstance(node, dict):
        r = node.get("$ref")
        if r:
            acc.add(r.split("/")[-1])
        for v in node.values():
            refs(v, acc)
    elif isinstance(node, list):
        for v in node:
            refs(v, acc)


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: make-schema.py SWAGGER.json OUT.json VERSION")
    src, dst, version = sys.argv[1:4]
    with open(src) as f:
        swagger = json.load(f)
    defs = swagger["definitions"]
    kinds = {}
    for name, d in defs.items():
        for gvk in d.get("x-kubernetes-group-version-kind", []):
            api = gvk["version"] if not gvk["group"] else gvk["group"] + "/" + gvk["version"]
            if (api, gvk["kind"]) in KINDS and "properties" in d and "kind" in d["properties"]:
                kinds[api + " " + gvk["kind"]] = name
    missing = [k for k in KINDS if k[0] + " " + k[1] not in kinds]
    if missing:
        sys.exit("make-schema: %s has no definition for %s" % (src, missing))
    keep, todo = set(), list(kinds.values())
    while todo:
        n = todo.pop()
        if n in keep:
            continue
        keep.add(n)
        acc = set()
        refs(defs[n], acc)
        todo.extend(acc - keep)
    out = {}
    for n in sorted(keep):
        d = strip(defs[n])
        d.pop("x-kubernetes-group-version-kind", None)
        out[n] = d
    out[INT_OR_STRING] = {"oneOf": [{"type": "string"}, {"type": "integer"}]}
    out[QUANTITY] = {"oneOf": [{"type": "string"}, {"type": "number"}]}
    for key, n in kinds.items():
        api, kind = key.split(" ")
        out[n]["properties"]["apiVersion"] = {"type": "string", "enum": [api]}
        out[n]["properties"]["kind"] = {"type": "string", "enum": [kind]}
    doc = {
        "$comment": "Kubernetes %s API objects, strict (see make-schema.py)" % version,
        "kubernetesVersion": version,
        "kinds": dict(sorted(kinds.items())),
        "definitions": out,
    }
    with open(dst, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
        f.write("\n")
    print("%s: %d kinds, %d definitions (Kubernetes %s)" % (dst, len(kinds), len(out), version))


if __name__ == "__main__":
    main()

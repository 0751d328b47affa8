#!/usr/bin/env python3
"""Validates Kubernetes manifests offline against the vendored schemas in this folder: the API
objects of Kubernetes 1.20.2 (kubernetes-1.20.2-strict.json) and the Kubeflow MPIJob v2beta1
(mpijob-v2beta1.json), strict (an unknown field is an error), with python3-jsonschema (Debian's
package of the reference Python implementation of JSON Schema).

usage: validate.py FILE.yaml...     (every YAML document in each file; "-" reads stdin)
Prints one line per document, "FILE: N/M KIND NAME: ok" or the errors with the field's path;
exits 0 when every document is valid, 1 when one is not, 2 on unreadable input or a document
whose apiVersion and kind have no schema here.
"""
import json
import os
import sys

try:
    import jsonschema
    import yaml
except ImportError as e:
    sys.exit("validate.py: %s (scripts/setup.sh installs python3-jsonschema and python3-yaml)" % e)

HERE = os.path.dirname(os.path.abspath(__file__))
SCHEMAS = ["kubernetes-1.20.2-strict.json", "mpijob-v2beta1.json"]


def load():
    kinds, defs = {}, {}
    for name in SCHEMAS:
        with open(os.path.join(HERE, name)) as f:
            doc = json.load(f)
        kinds.update(doc["kinds"])
        defs.update(doc["definitions"])
    return kinds, defs


def path_of(err):
    p = "".join("[%d]" % x if isinstance(x, int) else "." + str(x) for x in err.absolute_path)
    return p or "."


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if argv else 2
    kinds, defs = load()
    status = 0
    for path in argv:
        try:
            text = sys.stdin.read() if path == "-" else open(path).read()
            docs = [d for d in yaml.safe_load_all(text) if d is not None]
        except (OSError, yaml.YAMLError) as e:
            print("%s: %s" % (path, e))
            status = max(status, 2)
            continue
        for i, d in enumerate(docs, 1):
            if not isinstance(d, dict):
                print("%s: %d/%d: not a mapping" % (path, i, len(docs)))
                status = max(status, 1)
                continue
            key = "%s %s" % (d.get("apiVersion"), d.get("kind"))
            name = (d.get("metadata") or {}).get("name", "?")
            where = "%s: %d/%d %s %s" % (path, i, len(docs), d.get("kind"), name)
            if key not in kinds:
                print("%s: no schema for apiVersion/kind %s" % (where, key))
                status = max(status, 2)
                continue
            schema = {"allOf": [{"$ref": "#/definitions/" + kinds[key]}],
                      "required": ["apiVersion", "kind", "metadata"], "definitions": defs}
            v = jsonschema.Draft4Validator(schema)
            errors = sorted(v.iter_errors(d), key=lambda e: list(e.absolute_path))
            if not errors:
                print("%s: ok" % where)
                continue
            status = max(status, 1)
            for e in errors:
                msg = e.message if len(e.message) < 300 else e.message[:300] + "..."
                print("%s: %s: %s" % (where, path_of(e), msg))
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

#!/bin/bash
# The Kubernetes manifests against the schemas of a pinned Kubernetes (1.20.2) and of the Kubeflow
# MPIJob v2beta1, offline and strict (deploy/kubernetes/schemas/validate.py, python3-jsonschema):
#   1. every object in deploy/kubernetes/*.yaml is valid (kustomization.yaml is kustomize's
#      configuration, not an API object; `kubectl kustomize` renders it in deploy_files);
#   2. the validator fails for the right reason on broken copies: a misspelt field, a field of
#      the wrong type, a missing required field, an unknown MPIJob field, an unknown kind.
# Rendered MPIJobs are validated where the coordinator applies them (tests/cluster/
# kubernetes_follow.sh: its kubectl stand-in runs validate.py on every manifest it is given).
# usage: check-kubernetes.sh SOURCE_DEPLOY_DIR
set -u
src=${1:?usage: check-kubernetes.sh SOURCE_DEPLOY_DIR}
v=$src/kubernetes/schemas/validate.py
python3 -c 'import jsonschema, yaml' 2>/dev/null ||
    { echo "FAIL: python3 with jsonschema and yaml is required (scripts/setup.sh installs python3-jsonschema python3-yaml)"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

files=()
for f in "$src"/kubernetes/*.yaml; do
    [ "$(basename "$f")" = kustomization.yaml ] || files+=("$f")
done
echo "# 1: deploy/kubernetes against Kubernetes 1.20.2 and MPIJob v2beta1"
python3 "$v" "${files[@]}" || { echo "FAIL: a manifest in deploy/kubernetes is not valid"; fail=1; }
n=$(python3 "$v" "${files[@]}" | grep -c ': ok$')
# 11: the curve file holds two Secrets (coordinator, workers).
[ "$n" = 11 ] || { echo "FAIL: $n documents validated, expected 11"; fail=1; }

# expect_invalid NAME FILE PATTERN: the validator exits non-zero and says PATTERN.
expect_invalid() {
    local out rc
    out=$(python3 "$v" "$2" 2>&1)
    rc=$?
    if [ "$rc" -ne 0 ] && printf '%s\n' "$out" | grep -q -- "$3"; then
        echo "ok:   caught $1: $(printf '%s\n' "$out" | grep -- "$3" | head -n 1)"
    else
        echo "FAIL: $1 not caught (exit $rc, want a line with '$3'):"
        printf '%s\n' "$out" | sed 's/^/      /'
        fail=1
    fi
}

echo "# 2: broken copies"
sed 's/^\(\s*\)- name: worker$/\1- name: worker\n\1  imagePullPolcy: Always/' \
    "$src/kubernetes/workers.yaml" >"$tmp/misspelt.yaml"
expect_invalid "a misspelt container field" "$tmp/misspelt.yaml" "'imagePullPolcy' was unexpected"
sed 's/^\(  replicas:\) .*/\1 "two"/' "$src/kubernetes/workers.yaml" >"$tmp/type.yaml"
expect_invalid "replicas as a string" "$tmp/type.yaml" ".spec.replicas: 'two' is not of type 'integer'"
cat >"$tmp/required.yaml" <<'YAML'
apiVersion: apps/v1
kind: Deployment
metadata: {name: x}
spec:
  template: {spec: {containers: [{name: c, image: i}]}}
YAML
expect_invalid "a Deployment without selector" "$tmp/required.yaml" "'selector' is a required property"
sed 's/^  slotsPerWorker:/  slotsPerWorkers:/' "$src/kubernetes/mpijob-target.yaml" >"$tmp/mpijob.yaml"
expect_invalid "an unknown MPIJob spec field" "$tmp/mpijob.yaml" "'slotsPerWorkers' was unexpected"
sed 's/^  mpiImplementation: OpenMPI/  mpiImplementation: MVAPICH/' \
    "$src/kubernetes/mpijob-target.yaml" >"$tmp/impl.yaml"
expect_invalid "an MPI implementation the CRD lacks" "$tmp/impl.yaml" "'MVAPICH' is not one of"
printf 'apiVersion: example.org/v1\nkind: Gadget\nmetadata: {name: g}\n' >"$tmp/kind.yaml"
expect_invalid "an unknown kind" "$tmp/kind.yaml" "no schema for apiVersion/kind example.org/v1 Gadget"
exit "$fail"

#!/bin/bash
# Checks the deployment files with the tools this machine has (each missing tool is reported
# and skipped; exit 77, "skipped", when none is there):
#   systemd-analyze verify   the configured units, with ExecStart's programs as stubs
#   bash -n, shellcheck      deploy/slurm/workers.sbatch
#   python3 + PyYAML         every deploy/kubernetes/*.yaml parses, with the expected kinds
#   kubectl kustomize        deploy/kubernetes renders
# Usage: check-deploy.sh SOURCE_DEPLOY_DIR BUILD_DEPLOY_DIR   (meson passes both)
# The checks are functions called through check(), which shellcheck cannot follow (SC2317).
# shellcheck disable=SC2317
set -u
src=${1:?usage: check-deploy.sh SOURCE_DEPLOY_DIR BUILD_DEPLOY_DIR}
build=${2:?usage: check-deploy.sh SOURCE_DEPLOY_DIR BUILD_DEPLOY_DIR}
fail=0 ran=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

check() { # name, command...: run one check, report it
    local name=$1
    shift
    ran=$((ran + 1))
    if out=$("$@" 2>&1); then
        echo "ok:   $name"
    else
        echo "FAIL: $name"
        printf '%s\n' "$out" | sed 's/^/      /'
        fail=1
    fi
}

verify_units() {
    local bindir unit out
    mkdir -p "$tmp/bin" "$tmp/units"
    for unit in "$build"/*.service; do
        bindir=$(sed -n 's|^ExecStart=\(.*\)/regmix-[a-z]* .*|\1|p' "$unit")
        [ -n "$bindir" ] || { echo "$unit: no ExecStart"; return 1; }
        sed "s|$bindir/|$tmp/bin/|g" "$unit" >"$tmp/units/$(basename "$unit")"
    done
    for prog in regmix-coordinator regmix-worker regmix-train; do
        printf '#!/bin/sh\n' >"$tmp/bin/$prog"
        chmod +x "$tmp/bin/$prog"
    done
    cp "$tmp/units/regmix-worker@.service" "$tmp/units/regmix-worker@test.service"
    out=$(cd "$tmp/units" && systemd-analyze verify --man=no ./regmix-coordinator.service \
        ./regmix-worker@test.service 2>&1) || { echo "$out"; return 1; }
    # verify exits 0 on unknown keys and bad values: any output is a finding.
    [ -z "$out" ] || { echo "$out"; return 1; }
}

yaml_kinds() {
    python3 - "$src/kubernetes" <<'PY'
import glob, os, sys
import yaml
want = {"namespace.yaml": ["Namespace"], "config.yaml": ["ConfigMap"],
        "curve-secret.yaml": ["Secret"],
        "storage.yaml": ["PersistentVolumeClaim", "PersistentVolumeClaim"],
        "coordinator.yaml": ["Service", "Service", "StatefulSet"],
        "workers.yaml": ["Deployment"], "mpijob-target.yaml": ["MPIJob"],
        "kustomization.yaml": ["Kustomization"]}
bad = 0
for path in sorted(glob.glob(os.path.join(sys.argv[1], "*.yaml"))):
    with open(path) as f:
        kinds = [d.get("kind") for d in yaml.safe_load_all(f) if d]
    if want.get(os.path.basename(path)) != kinds:
        print("%s: kinds %s, expected %s" % (path, kinds, want.get(os.path.basename(path))))
        bad = 1
sys.exit(bad)
PY
}

if command -v systemd-analyze >/dev/null; then
    check "systemd-analyze verify (units)" verify_units
else
    echo "skip: systemd-analyze not found"
fi
check "bash -n slurm/workers.sbatch" bash -n "$src/slurm/workers.sbatch"
if command -v shellcheck >/dev/null; then
    check "shellcheck slurm/workers.sbatch" shellcheck "$src/slurm/workers.sbatch"
else
    echo "skip: shellcheck not found"
fi
if python3 -c 'import yaml' 2>/dev/null; then
    check "kubernetes/*.yaml parse with the expected kinds" yaml_kinds
else
    echo "skip: python3 with PyYAML not found"
fi
if command -v kubectl >/dev/null; then
    check "kubectl kustomize kubernetes" kubectl kustomize "$src/kubernetes"
else
    echo "skip: kubectl not found"
fi
[ "$ran" -gt 1 ] || exit 77
exit "$fail"

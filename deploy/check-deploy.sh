#!/bin/bash
# Checks the deployment files with the tools this machine has (each missing tool is reported
# and skipped; exit 77, "skipped", when none is there):
#   systemd-analyze verify   the configured units, with ExecStart's programs as stubs
#   bash -n, shellcheck      deploy/slurm/workers.sbatch
#   python3 + PyYAML         every deploy/kubernetes/*.yaml parses, with the expected kinds
#   kubectl kustomize        deploy/kubernetes renders
#   python3 + the programs   every --option given to regmix-coordinator, regmix-worker,
#                            regmixctl, regmix-train or regmix-build-corpus in these files (or in
#                            REGMIX_COORDINATOR_OPTS, REGMIX_CURVE_OPTS, REGMIX_WORKER_OPTS) is
#                            one that program's --help lists
# Usage: check-deploy.sh SOURCE_DEPLOY_DIR BUILD_DEPLOY_DIR [COORDINATOR WORKER REGMIXCTL [TRAIN]]
# (meson passes them all)
# The checks are functions called through check(), which shellcheck cannot follow (SC2317).
# shellcheck disable=SC2317
set -u
src=${1:?usage: check-deploy.sh SOURCE_DEPLOY_DIR BUILD_DEPLOY_DIR}
build=${2:?usage: check-deploy.sh SOURCE_DEPLOY_DIR BUILD_DEPLOY_DIR}
coordinator=${3:-} worker=${4:-} regmixctl=${5:-} train=${6:-}
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
        "curve-secret.yaml": ["Secret", "Secret"],
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

# CURVE everywhere, each pod with only its keys: worker pods mount the regmix-curve-worker
# Secret, which holds coordinator.pub and worker.key and nothing else (never coordinator.key or
# an allow list); the coordinator runs with a secret key and one allow list per endpoint; the
# systemd units load their keys as credentials.
curve_scope() {
    python3 - "$src" <<'PY'
import os, sys
import yaml
src = sys.argv[1]
k = os.path.join(src, "kubernetes")
bad = []
docs = {}
for name in ("curve-secret.yaml", "workers.yaml", "coordinator.yaml", "config.yaml"):
    with open(os.path.join(k, name)) as f:
        docs[name] = [d for d in yaml.safe_load_all(f) if d]
secrets = {d["metadata"]["name"]: d for d in docs["curve-secret.yaml"]}
w = secrets.get("regmix-curve-worker", {})
if sorted((w.get("stringData") or {}).keys()) != ["coordinator.pub", "worker.key"]:
    bad.append("regmix-curve-worker must hold exactly coordinator.pub and worker.key")
pod = docs["workers.yaml"][0]["spec"]["template"]["spec"]
for v in pod["volumes"]:
    sec = v.get("secret")
    if not sec:
        continue
    items = sorted(i["key"] for i in sec.get("items", []))
    if sec["secretName"] != "regmix-curve-worker" or items != ["coordinator.pub", "worker.key"]:
        bad.append("worker volume %s mounts %s %s" % (v["name"], sec["secretName"], items))
opts = docs["config.yaml"][0]["data"]["REGMIX_COORDINATOR_OPTS"]
for o in ("--curve-secret-key", "--curve-allow-workers", "--curve-allow-clients"):
    if o not in opts:
        bad.append("REGMIX_COORDINATOR_OPTS lacks " + o)
if "--insecure" in opts:
    bad.append("REGMIX_COORDINATOR_OPTS has --insecure")
for unit, need in (("regmix-coordinator.service.in", ["--curve-secret-key", "--curve-allow-workers",
                    "--curve-allow-clients", "LoadCredential=coordinator.key"]),
                   ("regmix-worker@.service.in", ["LoadCredential=worker.key",
                    "REGMIX_CURVE_SECRET_KEY=%d/worker.key"])):
    text = open(os.path.join(src, unit)).read()
    bad += ["%s lacks %s" % (unit, n) for n in need if n not in text]
for b in bad:
    print(b)
sys.exit(1 if bad else 0)
PY
}

# Every --option given to one of regmix's programs in the deployment files is in that program's
# --help. An invocation is the program's name (optionally after a .../bin/ or $bindir/ path) or
# one of the OPTS variables, up to the end of its logical line (continuations joined; YAML is
# parsed, so folded scalars are one string), a '|', ';', '&&' or a backtick. Fewer than 40
# checked options means the parsing went wrong: a failure too.
options_match_help() {
    python3 - "$src" "$coordinator" "$worker" "$regmixctl" "$train" <<'PY'
import glob, os, re, subprocess, sys
import yaml
src, coord, worker, ctl, train = sys.argv[1:6]
OPT = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")

def help_opts(argv):
    out = subprocess.run(argv + ["--help"], capture_output=True, text=True, timeout=30).stdout
    return set(OPT.findall(out)), out

progs = {}
progs["regmix-coordinator"] = help_opts([coord])[0]
progs["regmix-worker"] = help_opts([worker])[0]
opts, text = help_opts([ctl])
subcommands = set(re.findall(r"^  ([a-z]+) ", text, re.M))
for cmd in subcommands:
    opts |= help_opts([ctl, cmd])[0]
progs["regmixctl"] = opts
if train:
    progs["regmix-train"] = help_opts([train])[0]
corpus = os.path.join(src, "..", "scripts", "build-corpus.py")
if os.path.exists(corpus):
    progs["regmix-build-corpus"] = help_opts([sys.executable, corpus])[0]
alias = {"REGMIX_COORDINATOR_OPTS": "regmix-coordinator", "REGMIX_CURVE_OPTS": "regmix-coordinator",
         "REGMIX_WORKER_OPTS": "regmix-worker"}
names = "|".join(re.escape(n) for n in sorted(list(progs) + list(alias), key=len, reverse=True))
INV = re.compile(r"(?:(?<=[\s\"'`(=])|^)(?:[^\s\"'`]*bin[^\s/\"'`]*/)?(" + names +
                 r")(?=[\s\"'=:]|$)")
STOP = re.compile(r"\||;|&&|`")

checked, bad = 0, []
def check_text(path, text, owner=None):
    global checked
    spans = []
    for m in INV.finditer(text):
        prog = alias.get(m.group(1), m.group(1))
        nxt = (text[m.end():].split() or [""])[0].strip("\"'")
        # A program's name in prose ("regmixctl users") is not an invocation.
        if m.group(1) in alias or nxt[:1] in ("-", "$", "\\", "") or nxt in subcommands:
            spans.append((m.start(), m.end(), prog))
    if owner:
        spans.insert(0, (0, 0, owner))
    for i, (_, end, prog) in enumerate(spans):
        if prog not in progs:
            continue
        stop = spans[i + 1][0] if i + 1 < len(spans) else len(text)
        m = STOP.search(text, end, stop)
        for opt in OPT.findall(text[end:m.start() if m else stop]):
            checked += 1
            if opt not in progs[prog]:
                bad.append("%s: %s has no option %s" % (path, prog, opt))

def walk(path, node, key=None):
    if isinstance(node, dict):
        for k, v in node.items():
            walk(path, v, k)
    elif isinstance(node, list):
        for v in node:
            walk(path, v, key)
    elif isinstance(node, str):
        for line in node.splitlines() or [node]:
            check_text(path, line, alias.get(key))

files = sorted(glob.glob(os.path.join(src, "*")) + glob.glob(os.path.join(src, "*", "*")))
for path in files:
    if not os.path.isfile(path) or path.endswith("check-deploy.sh") or path.endswith("meson.build"):
        continue
    with open(path) as f:
        text = f.read()
    rel = os.path.relpath(path, src)
    if path.endswith(".yaml"):
        for doc in yaml.safe_load_all(text):
            walk(rel, doc)
        text = "\n".join(l for l in text.splitlines() if l.lstrip().startswith("#"))
    for line in re.sub(r"\\\n\s*(#\s*)?", " ", text).splitlines():
        check_text(rel, line)
for b in bad:
    print(b)
print("%d options checked against --help" % checked)
sys.exit(1 if bad or checked < 40 else 0)
PY
}

if [ -n "$regmixctl" ] && python3 -c 'import yaml' 2>/dev/null; then
    check "options in deploy/ match the programs' --help" options_match_help
else
    echo "skip: options vs --help (no programs given, or no PyYAML)"
fi
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
    check "CURVE everywhere; worker pods mount only their keys" curve_scope
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

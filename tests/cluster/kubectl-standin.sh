#!/bin/bash
# A stand-in for kubectl, for kubernetes_follow.sh only: no Kubernetes cluster can run where the
# tests run, so this test double of the external tool answers the four calls the coordinator
# makes, from MPIJob documents in the MPI Operator v2beta1 format (tests/fixtures/mpijob/) and a
# scenario per MPIJob the test writes:
#   kubectl apply -f FILE               validates FILE against the Kubernetes 1.20.2 and MPIJob
#                                       v2beta1 schemas (deploy/kubernetes/schemas/validate.py)
#                                       and refuses it as a real API server would when it is not
#                                       valid; records the job
#   kubectl get mpijob NAME -n NS -o json   the scenario's next document (the last one repeats);
#                                       NotFound once deleted or never applied
#   kubectl logs -n NS job/NAME-launcher    the launcher's log so far: the scenario's log lines up
#                                       to the current document's
#   kubectl delete mpijob NAME -n NS ...    marks it deleted
# Its folder is $KUBECTL_STANDIN_DIR: NAME.scenario ("created running running succeeded", one
# document name a poll), NAME.log (the launcher's whole log), and what it keeps (NAME.applied,
# NAME.step, NAME.deleted, calls: one line per invocation).
set -u
dir=${KUBECTL_STANDIN_DIR:?KUBECTL_STANDIN_DIR is not set}
fixtures=${KUBECTL_STANDIN_FIXTURES:?}
validate=${KUBECTL_STANDIN_VALIDATE:?}
echo "$*" >>"$dir/calls"

notfound() {
    echo "Error from server (NotFound): mpijobs.kubeflow.org \"$1\" not found" >&2
    exit 1
}

# the NAME of "mpijob NAME" or "job/NAME-launcher", and the -n namespace
name= ns=default file=
args=("$@")
for ((i = 0; i < $#; i++)); do
    case ${args[$i]} in
    -n) ns=${args[$((i + 1))]} ;;
    -f) file=${args[$((i + 1))]} ;;
    esac
done

case "${1:-} ${2:-}" in
"apply -f")
    out=$(python3 "$validate" "$file" 2>&1) || {
        echo "error: $file is not a valid object (the stand-in checks it as an API server would):" >&2
        echo "$out" >&2
        exit 1
    }
    name=$(python3 -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["metadata"]["name"])' "$file")
    cp "$file" "$dir/$name.applied"
    rm -f "$dir/$name.deleted" "$dir/$name.step"
    echo "mpijob.kubeflow.org/$name created"
    ;;
"get mpijob")
    name=$3
    [ -f "$dir/$name.applied" ] && [ ! -f "$dir/$name.deleted" ] || notfound "$name"
    read -r -a seq <"$dir/$name.scenario"
    step=$(cat "$dir/$name.step" 2>/dev/null || echo 0)
    [ "$step" -lt "${#seq[@]}" ] || step=$((${#seq[@]} - 1))
    echo $((step + 1)) >"$dir/$name.step"
    sed -e "s/\"NAME\"/\"$name\"/; s|NAMESPACE/NAME|$ns/$name|g; s/\"NAMESPACE\"/\"$ns\"/" \
        "$fixtures/${seq[$step]}.json"
    ;;
"logs -n")
    job=${4#job/}
    name=${job%-launcher}
    [ -f "$dir/$name.applied" ] && [ ! -f "$dir/$name.deleted" ] ||
        { echo "Error from server (NotFound): jobs.batch \"$job\" not found" >&2; exit 1; }
    read -r -a seq <"$dir/$name.scenario"
    step=$(cat "$dir/$name.step" 2>/dev/null || echo 1)
    [ "$step" -le "${#seq[@]}" ] || step=${#seq[@]}
    # the log grows with the documents served: all of it once the job succeeded
    if [ "${seq[$((step - 1))]}" = succeeded ] || [ "${seq[$((step - 1))]}" = failed ]; then
        cat "$dir/$name.log"
    else
        head -n "$step" "$dir/$name.log" | grep -v '"event":"result"'
    fi
    ;;
"delete mpijob")
    name=$3
    [ -f "$dir/$name.applied" ] || notfound "$name"
    touch "$dir/$name.deleted"
    echo "mpijob.kubeflow.org \"$name\" deleted"
    ;;
*)
    echo "kubectl stand-in: unexpected call: $*" >&2
    exit 2
    ;;
esac

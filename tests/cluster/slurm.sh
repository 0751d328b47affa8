# slurm.sh: a real single-node Slurm cluster for one test (sourced after integration/lib.sh).
#
# slurm_up starts munged, slurmctld and slurmd from Debian's packages (slurm-wlm 22.05, munge),
# as root, each in the foreground as a child of the test with its own pid, with everything in
# $T/slurm: a fresh munge key and socket, slurm.conf, state and spool directories, logs, and two
# ports picked free. No systemd and nothing under /etc is used: SLURM_CONF points every Slurm
# command of the test (and of the coordinator it starts, which inherits it) at this cluster.
# slurm_down cancels every job, waits until the node has no job left, stops the daemons with
# SIGTERM and waits for them; the test's EXIT trap calls it, pass or fail.
#
# The node is the machine itself (its short host name, address 127.0.0.1), declared larger than
# it is (SlurmdParameters=config_overrides: 32 CPUs, 128 GiB, two GPUs as gres without devices)
# so that deploy/slurm/workers.sbatch runs as written (--cpus-per-task=8 --mem=32G
# --gres=gpu:1) beside a target job. There is no slurmdbd: accounting_storage/none, with
# jobcomp/filetxt recording every finished job; `sacct --completion` reads that file (slurm_sacct).
#
# usage: . slurm.sh; slurm_up; ...; (slurm_down runs at exit)

SLURM_DIR=$T/slurm
SLURM_PIDS=()

for prog in munged slurmctld slurmd sbatch squeue sacct scancel; do
    command -v "$prog" >/dev/null || PATH=$PATH:/usr/sbin command -v "$prog" >/dev/null ||
        fail "$prog not found: the cluster suite needs Debian's slurmctld, slurmd, slurm-client and munge (scripts/setup.sh installs them)"
done
[ "$(id -u)" = 0 ] || fail "the cluster suite starts slurmd and munged as root; run it as root"
PATH=$PATH:/usr/sbin

# slurm_wait SECONDS WHAT COMMAND...: polls COMMAND until it succeeds.
slurm_wait() {
    local secs=$1 what=$2
    shift 2
    local end=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt $end ] || fail "$what not within $secs s"
        sleep 0.2
    done
}

slurm_node_idle() {
    sinfo -h -n "$SLURM_NODE" -o %T | grep -qx 'idle\|mixed\|allocated'
}

slurm_up() {
    local d=$SLURM_DIR
    mkdir -p "$d/munge" "$d/state" "$d/spool" "$d/log" "$d/tmp" || fail "mkdir $d"
    chmod 700 "$d/munge"
    head -c 1024 /dev/urandom >"$d/munge/munge.key" && chmod 400 "$d/munge/munge.key" ||
        fail "munge key"
    munged --foreground --force --socket "$d/munge/sock" --key-file "$d/munge/munge.key" \
        --log-file "$d/log/munged.log" --pid-file "$d/munge/munged.pid" \
        --seed-file "$d/munge/seed" >>"$d/log/munged.out" 2>&1 &
    SLURM_PIDS+=($!)
    PIDS+=($!)
    slurm_wait 10 "munged answering on $d/munge/sock" munge -S "$d/munge/sock" -n

    SLURM_NODE=$(hostname -s)
    SLURM_CTLD_PORT=$(free_port)
    SLURM_D_PORT=$(free_port)
    while [ "$SLURM_D_PORT" = "$SLURM_CTLD_PORT" ]; do SLURM_D_PORT=$(free_port); done
    cat >"$d/slurm.conf" <<EOF
# Written by tests/cluster/slurm.sh for one test run.
ClusterName=regmixtest
SlurmctldHost=$SLURM_NODE(127.0.0.1)
SlurmctldPort=$SLURM_CTLD_PORT
SlurmdPort=$SLURM_D_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$d/munge/sock
StateSaveLocation=$d/state
SlurmdSpoolDir=$d/spool
# PMIx's per-step directories (spmix_appdir_UID_JOB.STEP, the server's) go under TmpFS, /tmp by
# default: another Slurm of another test run on this machine numbers its jobs from 1 too, and a
# step whose directory that one holds fails to launch ("File exists"; srun then exits 0 and the job
# reads COMPLETED without output).
TmpFS=$d/tmp
SlurmctldPidFile=$d/slurmctld.pid
SlurmdPidFile=$d/slurmd.pid
SlurmctldLogFile=$d/log/slurmctld.log
SlurmdLogFile=$d/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig=$d/plugstack.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=256
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1
ReturnToService=2
SlurmdParameters=config_overrides
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$d/jobcomp.txt
MinJobAge=600
KillWait=5
GresTypes=gpu
NodeName=$SLURM_NODE NodeAddr=127.0.0.1 CPUs=32 RealMemory=131072 Gres=gpu:2 State=UNKNOWN
PartitionName=regmix Nodes=$SLURM_NODE Default=YES MaxTime=INFINITE State=UP
EOF
    # Two "GPUs" without hardware: character devices that exist, so slurmd counts them.
    printf 'AutoDetect=off\nName=gpu File=/dev/null\nName=gpu File=/dev/zero\n' >"$d/gres.conf"
    : >"$d/plugstack.conf"
    export SLURM_CONF=$d/slurm.conf

    slurmctld -D -c >>"$d/log/slurmctld.out" 2>&1 &
    SLURM_PIDS+=($!)
    PIDS+=($!)
    slurm_wait 20 "slurmctld answering on port $SLURM_CTLD_PORT" scontrol ping
    slurmd -D >>"$d/log/slurmd.out" 2>&1 &
    SLURM_PIDS+=($!)
    PIDS+=($!)
    slurm_wait 30 "node $SLURM_NODE idle" slurm_node_idle
    note "slurm up: node $SLURM_NODE, slurmctld port $SLURM_CTLD_PORT, slurmd port $SLURM_D_PORT, SLURM_CONF=$SLURM_CONF"
}

# slurm_down: cancel every job, wait until none runs, stop the daemons (slurmd, slurmctld,
# munged) with SIGTERM and wait for each.
slurm_down() {
    [ ${#SLURM_PIDS[@]} -gt 0 ] || return 0
    scancel --full --quiet --user root 2>/dev/null
    local end=$((SECONDS + 20))
    while [ -n "$(squeue -h -o %i 2>/dev/null)" ] && [ $SECONDS -lt $end ]; do
        sleep 0.2
    done
    local i p
    for ((i = ${#SLURM_PIDS[@]} - 1; i >= 0; i--)); do
        p=${SLURM_PIDS[$i]}
        kill -TERM "$p" 2>/dev/null || continue
        end=$((SECONDS + 15))
        while kill -0 "$p" 2>/dev/null && [ $SECONDS -lt $end ]; do
            sleep 0.1
        done
    done
    SLURM_PIDS=()
}

# slurm_sacct ARGS...: sacct on the completion records (no slurmdbd), parsable, one line per
# job: JobID|JobName|State|ExitCode|NodeList.
slurm_sacct() {
    sacct --completion --allusers --noheader --parsable2 \
        --format jobid,jobname,state,exitcode,nodelist "$@" 2>/dev/null
}

# slurm_job_state ID: the job's state as slurmctld knows it (PENDING, RUNNING, COMPLETED, ...).
slurm_job_state() {
    squeue -h -t all -j "$1" -o %T 2>/dev/null | head -n 1
}

# slurm_wait_job ID SECONDS STATE...: polls until the job is in one of the states.
slurm_wait_job() {
    local id=$1 secs=$2
    shift 2
    local end=$((SECONDS + secs)) st want
    while [ $SECONDS -lt $end ]; do
        st=$(slurm_job_state "$id")
        for want in "$@"; do
            [ "$st" = "$want" ] && return 0
        done
        sleep 0.2
    done
    squeue -t all >&2
    fail "job $id not in state '$*' within $secs s (last: $st)"
}

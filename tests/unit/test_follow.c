/*
 * Unit tests of coordinator/follow.c: handles round-trip and refuse what must not reach a
 * command line; Slurm answers recorded from the cluster suite's slurmctld 22.05 (scontrol show
 * job -o, sacct --completion) and MPIJob documents in the MPI Operator v2beta1 status format
 * reduce to the right phase and reason; /proc start times tell a live process from a reused PID;
 * the capture runs real commands (output, exit status, time limit, missing program).
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "follow.h"
#include "test.h"

static void test_handles(void)
{
    follow_handle_t h = {.kind = FOLLOW_PID, .pid = 4242, .start_ticks = 987654};
    char buf[160];
    CHECK_INT_EQ(follow_handle_format(&h, buf, sizeof buf), 0);
    CHECK_STR_EQ(buf, "pid:4242@987654");
    follow_handle_t back;
    CHECK_INT_EQ(follow_handle_parse(buf, &back), 0);
    CHECK_INT_EQ(back.kind, FOLLOW_PID);
    CHECK_INT_EQ(back.pid, 4242);
    CHECK_INT_EQ(back.start_ticks, 987654);

    CHECK_INT_EQ(follow_handle_parse("slurm:123", &back), 0);
    CHECK_INT_EQ(back.kind, FOLLOW_SLURM);
    CHECK_STR_EQ(back.job_id, "123");
    CHECK_INT_EQ(follow_handle_format(&back, buf, sizeof buf), 0);
    CHECK_STR_EQ(buf, "slurm:123");

    CHECK_INT_EQ(follow_handle_parse("mpijob:regmix/regmix-sw000001-target", &back), 0);
    CHECK_INT_EQ(back.kind, FOLLOW_MPIJOB);
    CHECK_STR_EQ(back.ns, "regmix");
    CHECK_STR_EQ(back.name, "regmix-sw000001-target");

    CHECK_INT_EQ(follow_handle_parse("", &back), 0);
    CHECK_INT_EQ(back.kind, FOLLOW_NONE);
    CHECK_INT_EQ(follow_handle_parse(NULL, &back), 0);
    CHECK_INT_EQ(back.kind, FOLLOW_NONE);

    /* what would reach a command line unquoted, or is not a handle at all */
    const char *bad[] = {"slurm:12;rm -rf /", "slurm:",
                         "slurm:1_2",         "slurm:-1",
                         "mpijob:ns/Name",    "mpijob:ns/-x",
                         "mpijob:/x",         "mpijob:a b/c",
                         "mpijob:ns",         "pid:12",
                         "pid:0@1",           "pid:x@1",
                         "sbatch:12",         "slurm:123456789012345678901"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_MSG(follow_handle_parse(bad[i], &back) == -EINVAL, "%s", bad[i]);
        CHECK_INT_EQ(back.kind, FOLLOW_NONE);
    }
    follow_handle_t small = {.kind = FOLLOW_SLURM};
    snprintf(small.job_id, sizeof small.job_id, "12345");
    CHECK_INT_EQ(follow_handle_format(&small, buf, 8), -ENOSPC);
}

/* Recorded from the cluster suite (slurm-wlm 22.05.8), shortened after ExitCode. */
static const char scontrol_pending[] =
        "JobId=1 JobName=ok UserId=root(0) GroupId=root(0) MCS_label=N/A Priority=4294901759 "
        "Nice=0 Account=(null) QOS=(null) JobState=PENDING Reason=Resources Dependency=(null) "
        "Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=0:0 RunTime=00:00:00\n";
static const char scontrol_running[] =
        "JobId=1 JobName=ok UserId=root(0) GroupId=root(0) MCS_label=N/A Priority=4294901759 "
        "Nice=0 Account=(null) QOS=(null) JobState=RUNNING Reason=None Dependency=(null) "
        "Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=0:0 RunTime=00:00:03\n";
static const char scontrol_failed[] =
        "JobId=2 JobName=bad UserId=root(0) GroupId=root(0) MCS_label=N/A Priority=4294901758 "
        "Nice=0 Account=(null) QOS=(null) JobState=FAILED Reason=NonZeroExitCode "
        "Dependency=(null) Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=3:0\n";
static const char scontrol_cancelled[] =
        "JobId=3 JobName=canc UserId=root(0) GroupId=root(0) MCS_label=N/A Priority=4294901757 "
        "Nice=0 Account=(null) QOS=(null) JobState=CANCELLED Reason=Priority Dependency=(null) "
        "Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=0:0 RunTime=00:00:00\n";
static const char scontrol_completed[] =
        "JobId=4 JobName=regmix-sw000001-target UserId=root(0) GroupId=root(0) MCS_label=N/A "
        "Priority=4294901756 Nice=0 Account=(null) QOS=(null) JobState=COMPLETED Reason=None "
        "Dependency=(null) Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=0:0\n";

static void test_slurm(void)
{
    follow_status_t s;
    CHECK_INT_EQ(follow_slurm_scontrol(scontrol_pending, &s), 0);
    CHECK_INT_EQ(s.phase, FOLLOW_PENDING);
    CHECK_STR_EQ(s.state, "PENDING");
    CHECK_INT_EQ(follow_slurm_scontrol(scontrol_running, &s), 0);
    CHECK_INT_EQ(s.phase, FOLLOW_RUNNING);
    CHECK_INT_EQ(follow_slurm_scontrol(scontrol_completed, &s), 0);
    CHECK_INT_EQ(s.phase, FOLLOW_DONE);
    CHECK_STR_EQ(s.reason, "");
    CHECK_INT_EQ(follow_slurm_scontrol(scontrol_failed, &s), 0);
    CHECK_INT_EQ(s.phase, FOLLOW_FAILED);
    CHECK_STR_EQ(s.reason, "Slurm job FAILED, exit code 3:0 (NonZeroExitCode)");
    CHECK_INT_EQ(follow_slurm_scontrol(scontrol_cancelled, &s), 0);
    CHECK_INT_EQ(s.phase, FOLLOW_CANCELLED);
    /* slurmctld forgot the job (MinJobAge passed): scontrol's error, no JobState */
    CHECK_INT_EQ(follow_slurm_scontrol("slurm_load_jobs error: Invalid job id specified\n", &s),
                 -ENOENT);
    CHECK_INT_EQ(follow_slurm_scontrol("", &s), -ENOENT);
    /* "JobState" inside another word is not the key */
    CHECK_INT_EQ(follow_slurm_scontrol("OldJobState=RUNNING", &s), -ENOENT);
    follow_status_t u;
    CHECK_INT_EQ(follow_slurm_scontrol("JobState=WEIRD_NEW_STATE ExitCode=0:0", &u), 0);
    CHECK_INT_EQ(u.phase, FOLLOW_UNKNOWN);

    /* sacct (slurmdbd) and sacct --completion (jobcomp/filetxt), recorded */
    CHECK_INT_EQ(follow_slurm_sacct("COMPLETED|0:0\n", &s), 0);
    CHECK_INT_EQ(s.phase, FOLLOW_DONE);
    CHECK_INT_EQ(follow_slurm_sacct("CANCELLED by 0|0:15\n", &s), 0);
    CHECK_INT_EQ(s.phase, FOLLOW_CANCELLED);
    CHECK_STR_EQ(s.state, "CANCELLED");
    CHECK_INT_EQ(follow_slurm_sacct("OUT_OF_MEMORY|0:125\n", &s), 0);
    CHECK_INT_EQ(s.phase, FOLLOW_FAILED);
    CHECK_STR_EQ(s.reason, "Slurm job OUT_OF_MEMORY, exit code 0:125");
    CHECK_INT_EQ(follow_slurm_sacct("TIMEOUT|0:0\nTIMEOUT|0:0\n", &s), 0);
    CHECK_INT_EQ(s.phase, FOLLOW_FAILED);
    CHECK_INT_EQ(follow_slurm_sacct("", &s), -ENOENT);
    CHECK_INT_EQ(follow_slurm_sacct("\n", &s), -ENOENT);
}

/* MPIJob documents as `kubectl get mpijob NAME -o json` prints them, in the MPI Operator
 * v2beta1 status format (conditions Created, Running, Succeeded/Failed; written for this test:
 * no cluster runs here). */
#define MPIJOB_HEAD                                                                                \
    "{\"apiVersion\":\"kubeflow.org/v2beta1\",\"kind\":\"MPIJob\",\"metadata\":{\"name\":"         \
    "\"regmix-sw000001-target\",\"namespace\":\"regmix\"},\"spec\":{},"

static void test_mpijob(void)
{
    follow_status_t s;
    const char *created = MPIJOB_HEAD "\"status\":{\"conditions\":[{\"type\":\"Created\","
                                      "\"status\":\"True\",\"reason\":\"MPIJobCreated\"}]}}";
    CHECK_INT_EQ(follow_mpijob(created, strlen(created), &s), 0);
    CHECK_INT_EQ(s.phase, FOLLOW_PENDING);
    const char *fresh = MPIJOB_HEAD "\"status\":{}}";
    CHECK_INT_EQ(follow_mpijob(fresh, strlen(fresh), &s), 0);
    CHECK_INT_EQ(s.phase, FOLLOW_PENDING);
    const char *running =
            MPIJOB_HEAD "\"status\":{\"conditions\":[{\"type\":\"Created\",\"status\":\"True\"},"
                        "{\"type\":\"Running\",\"status\":\"True\",\"reason\":\"MPIJobRunning\"}"
                        "],\"replicaStatuses\":{\"Launcher\":{\"active\":1},\"Worker\":{"
                        "\"active\":2}}}}";
    CHECK_INT_EQ(follow_mpijob(running, strlen(running), &s), 0);
    CHECK_INT_EQ(s.phase, FOLLOW_RUNNING);
    CHECK_STR_EQ(s.state, "Running");
    const char *done =
            MPIJOB_HEAD "\"status\":{\"conditions\":[{\"type\":\"Created\",\"status\":\"True\"},"
                        "{\"type\":\"Running\",\"status\":\"False\"},{\"type\":\"Succeeded\","
                        "\"status\":\"True\",\"reason\":\"MPIJobSucceeded\"}]}}";
    CHECK_INT_EQ(follow_mpijob(done, strlen(done), &s), 0);
    CHECK_INT_EQ(s.phase, FOLLOW_DONE);
    const char *failed =
            MPIJOB_HEAD "\"status\":{\"conditions\":[{\"type\":\"Created\",\"status\":\"True\"},"
                        "{\"type\":\"Running\",\"status\":\"False\"},{\"type\":\"Failed\","
                        "\"status\":\"True\",\"reason\":\"MPIJobFailed\",\"message\":"
                        "\"MPIJob regmix/regmix-sw000001-target has failed because it has "
                        "reached the specified backoff limit\"}]}}";
    CHECK_INT_EQ(follow_mpijob(failed, strlen(failed), &s), 0);
    CHECK_INT_EQ(s.phase, FOLLOW_FAILED);
    CHECK_STR_EQ(s.reason, "MPIJob failed (MPIJobFailed): MPIJob regmix/regmix-sw000001-target "
                           "has failed because it has reached the specified backoff limit");
    const char *suspended =
            MPIJOB_HEAD "\"status\":{\"conditions\":[{\"type\":\"Suspended\",\"status\":"
                        "\"True\"}]}}";
    CHECK_INT_EQ(follow_mpijob(suspended, strlen(suspended), &s), 0);
    CHECK_INT_EQ(s.phase, FOLLOW_PENDING);
    CHECK_STR_EQ(s.state, "Suspended");
    const char *notjob = "{\"kind\":\"Pod\"}";
    CHECK_INT_EQ(follow_mpijob(notjob, strlen(notjob), &s), -EINVAL);
    const char *nf = "Error from server (NotFound): mpijobs.kubeflow.org \"x\" not found";
    CHECK_INT_EQ(follow_mpijob(nf, strlen(nf), &s), -EINVAL);
}

static void test_proc(void)
{
    uint64_t t = 0;
    CHECK_INT_EQ(follow_proc_start(getpid(), &t), 0);
    CHECK(t > 0);
    follow_handle_t me = {.kind = FOLLOW_PID, .pid = getpid(), .start_ticks = t};
    CHECK(follow_proc_alive(&me));
    follow_handle_t reused = me;
    reused.start_ticks = t + 1; /* same PID, another process */
    CHECK(!follow_proc_alive(&reused));

    pid_t child = fork();
    if (child == 0) {
        pause();
        _exit(0);
    }
    uint64_t ct = 0;
    CHECK_INT_EQ(follow_proc_start(child, &ct), 0);
    follow_handle_t ch = {.kind = FOLLOW_PID, .pid = child, .start_ticks = ct};
    CHECK(follow_proc_alive(&ch));
    kill(child, SIGKILL);
    /* a zombie is not alive */
    for (int i = 0; i < 200 && follow_proc_alive(&ch); i++)
        usleep(5000);
    CHECK(!follow_proc_alive(&ch));
    waitpid(child, NULL, 0);
    CHECK_INT_EQ(follow_proc_start(child, &ct), -ESRCH);
}

typedef struct cap_result {
    int calls;
    int64_t status;
    int timed_out;
    char out[256], err[256];
} cap_result_t;

static void on_cap(const follow_output_t *o, void *data)
{
    cap_result_t *r = data;
    r->calls++;
    r->status = o->exit_status;
    r->timed_out = o->timed_out;
    snprintf(r->out, sizeof r->out, "%s", o->out);
    snprintf(r->err, sizeof r->err, "%s", o->err);
}

static void test_capture(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    cap_result_t a = {0}, b = {0}, c = {0};
    char *echo[] = {"sh", "-c", "echo 4711; echo oops >&2; exit 3", NULL};
    CHECK_INT_EQ(follow_capture(&loop, echo, 5000, on_cap, &a), 0);
    char *slow[] = {"sleep", "30", NULL};
    CHECK_INT_EQ(follow_capture(&loop, slow, 200, on_cap, &b), 0);
    char *big[] = {"sh", "-c", "head -c 3000000 /dev/zero | tr '\\0' x; echo done", NULL};
    CHECK_INT_EQ(follow_capture(&loop, big, 10000, on_cap, &c), 0);
    char *none[] = {"/nonexistent/regmix-no-such-tool", NULL};
    cap_result_t d = {0};
    CHECK(follow_capture(&loop, none, 1000, on_cap, &d) < 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT_EQ(a.calls, 1);
    CHECK_INT_EQ(a.status, 3);
    CHECK_STR_EQ(a.out, "4711\n");
    CHECK_STR_EQ(a.err, "oops\n");
    CHECK_INT_EQ(b.calls, 1);
    CHECK_INT_EQ(b.timed_out, 1);
    CHECK_INT_EQ(b.status, -1);
    CHECK_INT_EQ(c.calls, 1);
    CHECK_INT_EQ(c.status, 0); /* output beyond the bound is dropped, the command still ends */
    CHECK_INT_EQ(d.calls, 0);
    CHECK_INT_EQ(uv_loop_close(&loop), 0);
}

int main(void)
{
    TEST_RUN(test_handles);
    TEST_RUN(test_slurm);
    TEST_RUN(test_mpijob);
    TEST_RUN(test_proc);
    TEST_RUN(test_capture);
    return test_finish();
}

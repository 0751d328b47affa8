/*
 * coord_harness: starts the built regmix-coordinator on loopback (free ports, a temporary
 * database) for the proto and fault tests, and talks to it with DEALER sockets.
 *
 * Header-only (static functions) so each test program includes it once. The coordinator's stderr
 * goes to DIR/coordinator.log; coord_harness_stop() sends SIGTERM and returns the exit status.
 */
#ifndef REGMIX_TEST_COORD_HARNESS_H
#define REGMIX_TEST_COORD_HARNESS_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "frame.h"

typedef struct coord_harness {
    pid_t pid;
    char dir[256];
    char db[300];
    char workers_ep[64];
    char clients_ep[64];
    void *zctx;
    /* When set (Z85), new DEALERs are CURVE clients of this server key with this key pair. */
    const char *curve_server_pub;
    const char *curve_client_pub;
    const char *curve_client_sec;
} coord_harness_t;

static uint64_t coord_harness__next_id = 1000;

/* A TCP port on 127.0.0.1 that was free a moment ago. */
static int coord_harness_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

static void coord_harness_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A DEALER connected to `ep` (linger 0). */
static void *coord_harness_dealer(coord_harness_t *h, const char *ep)
{
    void *s = zmq_socket(h->zctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    if (h->curve_server_pub) {
        zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, h->curve_server_pub, 41);
        zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, h->curve_client_pub, 41);
        zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, h->curve_client_sec, 41);
    }
    zmq_connect(s, ep);
    return s;
}

/* Receives one Envelope within timeout_ms; NULL on timeout or a bad message. */
static Regmix__Envelope *coord_harness_recv(void *sock, int timeout_ms)
{
    zmq_pollitem_t it = {sock, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&it, 1, timeout_ms) <= 0)
        return NULL;
    frame_msg_t m;
    if (frame_recv(sock, 0, ZMQ_DONTWAIT, &m) < 0 || m.err)
        return NULL;
    return m.env;
}

/* Sends `env` with a fresh id (returned). */
static uint64_t coord_harness_send(void *sock, Regmix__Envelope *env)
{
    env->version = FRAME_VERSION;
    env->id = ++coord_harness__next_id;
    if (frame_send(sock, NULL, 0, env, 0) < 0)
        return 0;
    return env->id;
}

/* Sends and waits for the reply to it (skipping other messages). */
static Regmix__Envelope *coord_harness_rpc(void *sock, Regmix__Envelope *env, int timeout_ms)
{
    uint64_t id = coord_harness_send(sock, env);
    for (int i = 0; i < 100; i++) {
        Regmix__Envelope *r = coord_harness_recv(sock, timeout_ms);
        if (!r || r->reply_to == id)
            return r;
        frame_free(&r);
    }
    return NULL;
}

/* ---- a worker's messages (the tests that play a worker, honest or rogue) ---- */

/* READY with n free slots. */
static inline void coord_harness_ready(void *sock, uint32_t n)
{
    Regmix__Envelope env;
    Regmix__Ready rd = REGMIX__READY__INIT;
    rd.free_slots = n;
    frame_envelope_init(&env, 0);
    env.body_case = REGMIX__ENVELOPE__BODY_READY;
    env.ready = &rd;
    coord_harness_send(sock, &env);
}

/* PING naming the n attempts it runs (ids may be NULL when n is 0). */
static inline void coord_harness_ping(void *sock, const uint64_t *ids, size_t n)
{
    Regmix__Envelope env;
    Regmix__Ping p = REGMIX__PING__INIT;
    p.running_attempt_ids = (uint64_t *)ids;
    p.n_running_attempt_ids = n;
    frame_envelope_init(&env, 0);
    env.body_case = REGMIX__ENVELOPE__BODY_PING;
    env.ping = &p;
    coord_harness_send(sock, &env);
}

/* STARTED for an attempt. */
static inline void coord_harness_started(void *sock, uint64_t attempt)
{
    Regmix__Envelope env;
    Regmix__Started st = REGMIX__STARTED__INIT;
    st.attempt_id = attempt;
    frame_envelope_init(&env, 0);
    env.body_case = REGMIX__ENVELOPE__BODY_STARTED;
    env.started = &st;
    coord_harness_send(sock, &env);
}

/* A `list` request over a fresh socket: 1 when a ListReply came back. */
static int coord_harness_list_ok(coord_harness_t *h, int timeout_ms)
{
    void *s = coord_harness_dealer(h, h->clients_ep);
    Regmix__Envelope env;
    Regmix__ListRequest req = REGMIX__LIST_REQUEST__INIT;
    frame_envelope_init(&env, 0);
    env.body_case = REGMIX__ENVELOPE__BODY_LIST;
    env.list = &req;
    Regmix__Envelope *r = coord_harness_rpc(s, &env, timeout_ms);
    int ok = r && r->body_case == REGMIX__ENVELOPE__BODY_LIST_REPLY;
    frame_free(&r);
    zmq_close(s);
    return ok;
}

static int coord_harness_alive(coord_harness_t *h)
{
    int st;
    return h->pid > 0 && waitpid(h->pid, &st, WNOHANG) == 0;
}

/* Starts the coordinator with extra args (NULL-terminated); returns 0 when it answers `list`. */
static int coord_harness_start(coord_harness_t *h, const char *const *extra)
{
    const char *build = getenv("REGMIX_BUILD_ROOT");
    char exe[512];
    snprintf(exe, sizeof exe, "%s/coordinator/regmix-coordinator", build ? build : ".");
    if (!h->dir[0]) {
        snprintf(h->dir, sizeof h->dir, "/tmp/regmix-coord-test-XXXXXX");
        if (!mkdtemp(h->dir))
            return -errno;
        snprintf(h->db, sizeof h->db, "%s/regmix.db", h->dir);
        snprintf(h->workers_ep, sizeof h->workers_ep, "tcp://127.0.0.1:%d",
                 coord_harness_free_port());
        snprintf(h->clients_ep, sizeof h->clients_ep, "tcp://127.0.0.1:%d",
                 coord_harness_free_port());
        h->zctx = zmq_ctx_new();
    }
    const char *argv[32] = {exe,           "--db",      h->db,        "--workers",
                            h->workers_ep, "--clients", h->clients_ep};
    int n = 7;
    for (int i = 0; extra && extra[i] && n < 30; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    char log[400];
    snprintf(log, sizeof log, "%s/coordinator.log", h->dir);
    h->pid = fork();
    if (h->pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (fd >= 0)
            dup2(fd, 2);
        execv(exe, (char *const *)argv);
        _exit(127);
    }
    if (h->pid < 0)
        return -errno;
    for (int i = 0; i < 100; i++) {
        if (!coord_harness_alive(h))
            return -ECHILD;
        if (coord_harness_list_ok(h, 200))
            return 0;
    }
    return -ETIMEDOUT;
}

/* SIGTERM (or `sig`) and wait; returns the exit status (128 + signal when killed), -1 if none. */
static int coord_harness_stop(coord_harness_t *h, int sig)
{
    if (h->pid <= 0)
        return -1;
    kill(h->pid, sig);
    int st = 0;
    for (int i = 0; i < 1000; i++) {
        pid_t r = waitpid(h->pid, &st, WNOHANG);
        if (r == h->pid)
            break;
        if (i == 999) {
            kill(h->pid, SIGKILL);
            waitpid(h->pid, &st, 0);
        }
        coord_harness_sleep_ms(10);
    }
    h->pid = 0;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Prints the coordinator's log (for a failing test). */
static void coord_harness_dump_log(const coord_harness_t *h)
{
    char path[400], line[1024];
    snprintf(path, sizeof path, "%s/coordinator.log", h->dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    while (fgets(line, sizeof line, f))
        fputs(line, stderr);
    fclose(f);
}

/* Removes the temporary directory and the ZeroMQ context. */
static void coord_harness_cleanup(coord_harness_t *h)
{
    if (h->pid > 0)
        coord_harness_stop(h, SIGKILL);
    if (h->zctx)
        zmq_ctx_term(h->zctx);
    h->zctx = NULL;
    if (h->dir[0]) {
        char cmd[400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", h->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", h->dir);
    }
}

#endif

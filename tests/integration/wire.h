/*
 * wire.h: helpers for the tests that start real regmix processes and speak the wire protocol
 * themselves (tests/integration, tests/fault): receive one Envelope with a timeout, send one,
 * start a program with its output in a log file, and stop it for sure.
 *
 * Every child started with wire_spawn() is remembered and killed (SIGKILL) by wire_cleanup(),
 * which the tests register with atexit(), so a failing test leaves no process behind.
 */
#ifndef REGMIX_TEST_WIRE_H
#define REGMIX_TEST_WIRE_H

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "frame.h"

#define WIRE_MAX_CHILDREN 64

static pid_t wire__children[WIRE_MAX_CHILDREN];
static int wire__n_children;

static inline long long wire_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void wire_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static inline void wire_cleanup(void)
{
    for (int i = 0; i < wire__n_children; i++) {
        if (wire__children[i] > 0) {
            kill(wire__children[i], SIGKILL);
            waitpid(wire__children[i], NULL, 0);
            wire__children[i] = 0;
        }
    }
}

static inline void wire_forget(pid_t pid)
{
    for (int i = 0; i < wire__n_children; i++)
        if (wire__children[i] == pid)
            wire__children[i] = 0;
}

/* Starts argv[0] with stdout and stderr appended to `log` (or inherited when NULL). */
static inline pid_t wire_spawn(char *const argv[], const char *log)
{
    pid_t pid = fork();
    if (pid == 0) {
        if (log) {
            int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
            if (fd >= 0) {
                dup2(fd, 1);
                dup2(fd, 2);
                close(fd);
            }
        }
        execv(argv[0], argv);
        /* Said in the child's log, so that a child that never ran is told from a silent one
         * (only async-signal-safe calls between fork and exit). */
        int e = errno;
        char num[12];
        int k = (int)sizeof num;
        do
            num[--k] = (char)('0' + e % 10);
        while ((e /= 10) > 0 && k > 0);
        static const char what[] = "wire_spawn: execv failed, errno ";
        ssize_t w = write(2, what, sizeof what - 1);
        w += write(2, num + k, sizeof num - (size_t)k);
        w += write(2, ": ", 2);
        w += write(2, argv[0], strlen(argv[0]));
        w += write(2, "\n", 1);
        (void)w;
        _exit(127);
    }
    if (pid > 0 && wire__n_children < WIRE_MAX_CHILDREN)
        wire__children[wire__n_children++] = pid;
    return pid;
}

/* Waits up to timeout_ms for `pid` to exit. Returns 0 and *ret_status, or -ETIMEDOUT. */
static inline int wire_wait(pid_t pid, int timeout_ms, int *ret_status)
{
    long long end = wire_now_ms() + timeout_ms;
    do {
        int st = 0;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            wire_forget(pid);
            if (ret_status)
                *ret_status = st;
            return 0;
        }
        if (r < 0)
            return -errno;
        wire_sleep_ms(10);
    } while (wire_now_ms() < end);
    return -ETIMEDOUT;
}

static inline void wire_kill9(pid_t pid)
{
    kill(pid, SIGKILL);
    wire_wait(pid, 5000, NULL);
}

/*
 * Receives one message within timeout_ms. Returns 0 (msg filled; the caller frees msg->env) or
 * -ETIMEDOUT.
 */
static inline int wire_recv(void *sock, int is_router, int timeout_ms, frame_msg_t *msg)
{
    long long end = wire_now_ms() + timeout_ms;
    for (;;) {
        long left = (long)(end - wire_now_ms());
        if (left < 0)
            return -ETIMEDOUT;
        zmq_pollitem_t pi = {sock, 0, ZMQ_POLLIN, 0};
        int n = zmq_poll(&pi, 1, left);
        if (n < 0 && errno != EINTR)
            return -errno;
        if (n <= 0)
            continue;
        int rc = frame_recv(sock, is_router, ZMQ_DONTWAIT, msg);
        if (rc == -EAGAIN)
            continue;
        return rc;
    }
}

/* A socket of `type` with the regmix options; binds (ROUTER, to a free loopback port, the
 * endpoint written to `endpoint`) or connects (`endpoint` given). */
static inline void *wire_socket(void *ctx, int type, char *endpoint, size_t size)
{
    void *s = zmq_socket(ctx, type);
    if (!s)
        return NULL;
    frame_socket_setup(s, 0);
    if (type == ZMQ_ROUTER) {
        if (zmq_bind(s, "tcp://127.0.0.1:*") != 0) {
            zmq_close(s);
            return NULL;
        }
        zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, endpoint, &size);
    } else if (zmq_connect(s, endpoint) != 0) {
        zmq_close(s);
        return NULL;
    }
    return s;
}

/* A free TCP port on loopback below the kernel's ephemeral range (so no outgoing connection can
 * take it after we let it go): bound once to check, then released. */
static inline int wire_free_port(void)
{
    int lo = 32768, hi = 60999;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f) {
        if (fscanf(f, "%d %d", &lo, &hi) != 2)
            lo = 32768;
        fclose(f);
    }
    if (lo <= 10001)
        lo = 32768;
    void *ctx = zmq_ctx_new();
    int port = -1;
    srand((unsigned)(getpid() ^ wire_now_ms()));
    for (int tries = 0; tries < 200 && port < 0; tries++) {
        int p = 10000 + rand() % (lo - 10000);
        void *s = zmq_socket(ctx, ZMQ_ROUTER);
        int linger = 0;
        zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
        char ep[64];
        snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", p);
        if (zmq_bind(s, ep) == 0)
            port = p;
        zmq_close(s);
    }
    zmq_ctx_term(ctx);
    return port;
}

#endif

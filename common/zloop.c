#include "zloop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define ZLOOP_DEFAULT_BATCH 1024u

struct zloop_watch {
    uv_poll_t poll;
    uv_prepare_t prepare;
    uv_check_t check;
    uv_idle_t idle;
    void *zsock;
    int is_router;
    zloop_recv_cb cb;
    zloop_ready_cb ready_cb; /* raw mode when set */
    void *data;
    unsigned batch;
    int open_handles; /* handles still to be closed; memory goes with the last */
    int closing;
    int stopped; /* receive failed: no more reading */
    unsigned long long count;
    frame_msg_t msg; /* one message at a time, kept here (it is ~300 bytes) */
};

/* Returns ZMQ_EVENTS of the socket, or 0 when it cannot be read. */
static int zloop__events(void *zsock)
{
    int ev = 0;
    size_t len = sizeof ev;
    if (zmq_getsockopt(zsock, ZMQ_EVENTS, &ev, &len) != 0)
        return 0;
    return ev;
}

/* The fd callback only wakes the loop up; the check phase does the reading. */
static void zloop__poll_cb(uv_poll_t *h, int status, int events)
{
    (void)h;
    (void)status;
    (void)events;
}

static void zloop__idle_cb(uv_idle_t *h)
{
    (void)h;
}

static void zloop__prepare_cb(uv_prepare_t *h)
{
    zloop_watch_t *w = h->data;
    if (w->closing || w->stopped)
        return;
    /* The fd watch stays started (starting and stopping it costs an epoll_ctl per iteration);
     * while input is pending the idle handle makes the loop poll with a zero timeout. */
    if (!uv_is_active((uv_handle_t *)&w->poll))
        uv_poll_start(&w->poll, UV_READABLE, zloop__poll_cb);
    if (zloop__events(w->zsock) & ZMQ_POLLIN)
        uv_idle_start(&w->idle, zloop__idle_cb);
}

static void zloop__stop_all(zloop_watch_t *w)
{
    uv_poll_stop(&w->poll);
    uv_idle_stop(&w->idle);
    uv_prepare_stop(&w->prepare);
    uv_check_stop(&w->check);
}

static void zloop__check_cb(uv_check_t *h)
{
    zloop_watch_t *w = h->data;
    uv_idle_stop(&w->idle);
    if (w->closing || w->stopped)
        return;
    if (!(zloop__events(w->zsock) & ZMQ_POLLIN))
        return;
    if (w->ready_cb) {
        for (unsigned n = 0; n < w->batch && !w->closing; n++) {
            if (n > 0 && !(zloop__events(w->zsock) & ZMQ_POLLIN))
                return;
            w->count++;
            w->ready_cb(w, w->zsock, w->data);
        }
        return;
    }
    /* Drain until the socket says EAGAIN (that read of its state is as good as ZMQ_EVENTS). */
    for (unsigned n = 0; n < w->batch && !w->closing; n++) {
        frame_msg_t *msg = &w->msg;
        int r = frame_recv(w->zsock, w->is_router, ZMQ_DONTWAIT, msg);
        if (r == -EAGAIN || r == -EINTR)
            return;
        if (r < 0) {
            /* The socket is unusable (closed, context terminated): report once and stop. */
            w->stopped = 1;
            zloop__stop_all(w);
            memset(msg, 0, sizeof *msg);
            msg->err = r;
            msg->why = "receiving from the socket failed";
            w->cb(w, msg, w->data);
            return;
        }
        w->count++;
        w->cb(w, msg, w->data);
        frame_free(&msg->env);
    }
}

static void zloop__close_cb(uv_handle_t *h)
{
    zloop_watch_t *w = h->data;
    if (--w->open_handles == 0)
        free(w);
}

static int zloop__new(uv_loop_t *loop,
                      void *zsock,
                      int is_router,
                      zloop_recv_cb cb,
                      zloop_ready_cb ready_cb,
                      void *data,
                      zloop_watch_t **ret)
{
    if (!loop || !zsock || !(cb || ready_cb) || !ret)
        return -EINVAL;
#ifdef _WIN32
    SOCKET fd;
#else
    int fd = -1;
#endif
    size_t fdlen = sizeof fd;
    if (zmq_getsockopt(zsock, ZMQ_FD, &fd, &fdlen) != 0)
        return -errno;
    zloop_watch_t *w = calloc(1, sizeof *w);
    if (!w)
        return -ENOMEM;
    w->zsock = zsock;
    w->is_router = is_router;
    w->cb = cb;
    w->ready_cb = ready_cb;
    w->data = data;
    w->batch = ZLOOP_DEFAULT_BATCH;
    int r = uv_poll_init_socket(loop, &w->poll, fd);
    if (r < 0) {
        free(w);
        return r;
    }
    /* From here on the memory is released by the close callbacks. */
    w->poll.data = w->prepare.data = w->check.data = w->idle.data = w;
    w->open_handles = 1;
    uv_prepare_init(loop, &w->prepare);
    w->open_handles++;
    uv_check_init(loop, &w->check);
    w->open_handles++;
    uv_idle_init(loop, &w->idle);
    w->open_handles++;
    uv_prepare_start(&w->prepare, zloop__prepare_cb);
    uv_check_start(&w->check, zloop__check_cb);
    *ret = w;
    return 0;
}

int zloop_watch_new(uv_loop_t *loop,
                    void *zsock,
                    int is_router,
                    zloop_recv_cb cb,
                    void *data,
                    zloop_watch_t **ret)
{
    return zloop__new(loop, zsock, is_router, cb, NULL, data, ret);
}

int zloop_watch_new_raw(
        uv_loop_t *loop, void *zsock, zloop_ready_cb cb, void *data, zloop_watch_t **ret)
{
    return zloop__new(loop, zsock, 0, NULL, cb, data, ret);
}

unsigned long long zloop_watch_count(const zloop_watch_t *w)
{
    return w ? w->count : 0;
}

void zloop_watch_set_batch(zloop_watch_t *w, unsigned batch)
{
    if (w && batch)
        w->batch = batch;
}

void zloop_watch_close(zloop_watch_t **w_p)
{
    if (!w_p || !*w_p)
        return;
    zloop_watch_t *w = *w_p;
    *w_p = NULL;
    if (w->closing)
        return;
    w->closing = 1;
    zloop__stop_all(w);
    uv_close((uv_handle_t *)&w->poll, zloop__close_cb);
    uv_close((uv_handle_t *)&w->prepare, zloop__close_cb);
    uv_close((uv_handle_t *)&w->check, zloop__close_cb);
    uv_close((uv_handle_t *)&w->idle, zloop__close_cb);
}

#include "auth.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "clock.h"
#include "curve.h"
#include "log.h"
#include "zloop.h"

#define AUTH_MAX_KEYS 65536

typedef struct auth_allow {
    int have; /* an allow file was given: only its keys pass */
    uint8_t (*keys)[32];
    size_t n;
} auth_allow_t;

struct auth {
    char secret[41]; /* Z85 */
    char public_[41];
    auth_allow_t workers;
    auth_allow_t clients;
    void *rep;
    zloop_watch_t *watch;
    unsigned long allowed;
    unsigned long denied;
    int64_t deny_window_mono;
    int deny_logs;
};

static int auth__load_allow(const char *path, auth_allow_t *al, char *err, size_t errlen)
{
    if (!path)
        return 0;
    al->have = 1;
    FILE *f = fopen(path, "re");
    if (!f) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        return -e;
    }
    char line[512];
    int lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        const char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p || *p == '#' || *p == '\n' || *p == '\r')
            continue;
        char z[41];
        void *grown = NULL;
        if (curve_key_parse(p, z) < 0 || al->n >= AUTH_MAX_KEYS ||
            !(grown = realloc(al->keys, (al->n + 1) * sizeof *al->keys))) {
            snprintf(err, errlen, "%s:%d: not a Z85 CURVE public key (40 characters)", path,
                     lineno);
            fclose(f);
            return -EINVAL;
        }
        al->keys = grown;
        zmq_z85_decode(al->keys[al->n++], z);
    }
    fclose(f);
    return 0;
}

int auth_new(const char *secret_path,
             const char *allow_workers,
             const char *allow_clients,
             auth_t **ret,
             char *err,
             size_t errlen)
{
    *ret = NULL;
    if (!secret_path) {
        if (allow_workers || allow_clients) {
            snprintf(err, errlen,
                     "--curve-allow-workers/--curve-allow-clients need --curve-secret-key");
            return -EINVAL;
        }
        return 0;
    }
    auth_t *a = calloc(1, sizeof *a);
    if (!a)
        return -ENOMEM;
    int r = curve_key_read(secret_path, "CURVE secret key", a->secret, err, errlen);
    if (r == 0 && zmq_curve_public(a->public_, a->secret) != 0) {
        snprintf(err, errlen, "%s: not a Z85 CURVE secret key (40 characters)", secret_path);
        r = -EINVAL;
    }
    if (r == 0)
        r = auth__load_allow(allow_workers, &a->workers, err, errlen);
    if (r == 0)
        r = auth__load_allow(allow_clients, &a->clients, err, errlen);
    if (r < 0) {
        auth_destroy(&a);
        return r;
    }
    *ret = a;
    return 0;
}

int auth_endpoint_is_local(const char *ep)
{
    if (strncmp(ep, "ipc://", 6) == 0 || strncmp(ep, "inproc://", 9) == 0)
        return 1;
    if (strncmp(ep, "tcp://", 6) != 0)
        return 0; /* pgm, udp, ws…: not ours to judge, so not local */
    const char *h = ep + 6;
    /* "tcp://SOURCE;HOST:PORT" binds are not used for a bind; judge the address bound. */
    if (strncmp(h, "127.", 4) == 0 || strncmp(h, "localhost:", 10) == 0 ||
        strncmp(h, "[::1]:", 6) == 0 || strncmp(h, "lo:", 3) == 0)
        return 1;
    return 0;
}

int auth_check_endpoint(
        const auth_t *a, const char *domain, const char *ep, char *err, size_t errlen)
{
    if (auth_endpoint_is_local(ep))
        return 0;
    if (a && (strcmp(domain, AUTH_DOMAIN_WORKERS) == 0 ? a->workers.have : a->clients.have))
        return 0;
    snprintf(err, errlen,
             "refusing to bind the %s endpoint %s: other machines can reach it and %s; give "
             "--curve-secret-key FILE and --curve-allow-%s FILE (keys from `regmixctl keygen`), "
             "bind it to loopback (tcp://127.0.0.1:PORT or ipc://PATH), or pass --insecure to "
             "accept any peer that reaches it",
             domain, ep, a ? "its peers are not on an allow list" : "CURVE is off", domain);
    return -EPERM;
}

static int auth__recv_frame(void *s, char *buf, size_t cap, size_t *ret_len, int *more)
{
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, s, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&m);
        return -errno;
    }
    size_t n = zmq_msg_size(&m);
    *ret_len = n;
    memcpy(buf, zmq_msg_data(&m), n < cap ? n : cap);
    *more = zmq_msg_more(&m);
    zmq_msg_close(&m);
    return 0;
}

/* One ZAP request: [version][request id][domain][address][routing id][mechanism][credentials]. */
static void auth__on_request(zloop_watch_t *w, void *s, void *data)
{
    (void)w;
    auth_t *a = data;
    char f[8][256];
    size_t len[8] = {0};
    int n = 0, more = 1;
    while (more) {
        char junk[256];
        size_t jl;
        if (auth__recv_frame(s, n < 8 ? f[n] : junk, 256, n < 8 ? &len[n] : &jl, &more) < 0)
            return;
        n++;
    }
    if (n < 6)
        return; /* not a ZAP request; REP has nothing to answer */
    int ok = 0;
    const char *why = "client key not allowed";
    const auth_allow_t *al = NULL;
    const char *domain = "?";
    if (len[2] == strlen(AUTH_DOMAIN_WORKERS) && memcmp(f[2], AUTH_DOMAIN_WORKERS, len[2]) == 0)
        al = &a->workers, domain = AUTH_DOMAIN_WORKERS;
    else if (len[2] == strlen(AUTH_DOMAIN_CLIENTS) &&
             memcmp(f[2], AUTH_DOMAIN_CLIENTS, len[2]) == 0)
        al = &a->clients, domain = AUTH_DOMAIN_CLIENTS;
    if (!al) {
        why = "unknown ZAP domain";
    } else if (len[5] == 5 && memcmp(f[5], "CURVE", 5) == 0 && n >= 7 && len[6] == 32) {
        if (!al->have) {
            ok = 1;
        } else {
            for (size_t i = 0; i < al->n && !ok; i++)
                ok = memcmp(al->keys[i], f[6], 32) == 0;
        }
        if (!ok)
            why = strcmp(domain, AUTH_DOMAIN_WORKERS) == 0 ? "key not on the workers allow list"
                                                           : "key not on the clients allow list";
    } else {
        why = "CURVE required";
    }
    char z[41] = "-";
    if (n >= 7 && len[6] == 32)
        zmq_z85_encode(z, (const uint8_t *)f[6], 32);
    if (ok) {
        a->allowed++;
        log_debug("auth_allowed", "endpoint=%s key=%s", domain, z);
    } else {
        a->denied++;
        /* A peer can retry handshakes as fast as it likes: log at most 10 denials a second. */
        int64_t now = clock_mono_ms();
        if (now - a->deny_window_mono >= 1000) {
            if (a->deny_logs > 10)
                log_warn("auth_denied_suppressed", "count=%d", a->deny_logs - 10);
            a->deny_window_mono = now;
            a->deny_logs = 0;
        }
        if (++a->deny_logs <= 10)
            log_warn("auth_denied", "endpoint=%s key=%s why=\"%s\"", domain, z, why);
    }
    size_t idlen = len[1] < 256 ? len[1] : 256;
    zmq_send(s, "1.0", 3, ZMQ_SNDMORE);
    zmq_send(s, f[1], idlen, ZMQ_SNDMORE);
    zmq_send(s, ok ? "200" : "400", 3, ZMQ_SNDMORE);
    zmq_send(s, ok ? "OK" : why, strlen(ok ? "OK" : why), ZMQ_SNDMORE);
    zmq_send(s, ok ? z : "", ok ? 40 : 0, ZMQ_SNDMORE);
    zmq_send(s, "", 0, 0);
}

int auth_start(auth_t *a, uv_loop_t *loop, void *zctx, char *err, size_t errlen)
{
    if (!a)
        return 0;
    a->rep = zmq_socket(zctx, ZMQ_REP);
    int zero = 0;
    if (!a->rep || zmq_setsockopt(a->rep, ZMQ_LINGER, &zero, sizeof zero) != 0 ||
        zmq_bind(a->rep, "inproc://zeromq.zap.01") != 0) {
        int e = errno;
        snprintf(err, errlen, "ZAP handler: %s", zmq_strerror(e));
        return -e;
    }
    int r = zloop_watch_new_raw(loop, a->rep, auth__on_request, a, &a->watch);
    if (r < 0)
        snprintf(err, errlen, "ZAP handler: %s", strerror(-r));
    return r;
}

int auth_server_socket(const auth_t *a, void *sock, const char *domain)
{
    if (!a)
        return 0;
    int one = 1;
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof one) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, a->secret, 41) != 0 ||
        zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, domain, strlen(domain)) != 0)
        return -errno;
    return 0;
}

unsigned long auth_allowed(const auth_t *a)
{
    return a ? a->allowed : 0;
}

unsigned long auth_denied(const auth_t *a)
{
    return a ? a->denied : 0;
}

void auth_stop(auth_t *a)
{
    if (!a)
        return;
    zloop_watch_close(&a->watch);
    if (a->rep)
        zmq_close(a->rep);
    a->rep = NULL;
}

void auth_destroy(auth_t **a_p)
{
    if (!a_p || !*a_p)
        return;
    auth_t *a = *a_p;
    *a_p = NULL;
    auth_stop(a);
    free(a->workers.keys);
    free(a->clients.keys);
    free(a);
}

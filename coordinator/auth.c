#include "auth.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "curve.h"
#include "log.h"
#include "zloop.h"

#define AUTH_MAX_KEYS 65536

struct auth {
    char secret[41]; /* Z85 */
    char public_[41];
    uint8_t (*allow)[32];
    size_t nallow;
    int have_allow;
    void *rep;
    zloop_watch_t *watch;
    unsigned long allowed;
    unsigned long denied;
};

int auth_new(
        const char *secret_path, const char *allow_path, auth_t **ret, char *err, size_t errlen)
{
    *ret = NULL;
    if (!secret_path)
        return 0;
    auth_t *a = calloc(1, sizeof *a);
    if (!a)
        return -ENOMEM;
    int r = curve_key_read(secret_path, "CURVE secret key", a->secret, err, errlen);
    if (r == 0 && zmq_curve_public(a->public_, a->secret) != 0) {
        snprintf(err, errlen, "%s: not a Z85 CURVE secret key (40 characters)", secret_path);
        r = -EINVAL;
    }
    if (r < 0) {
        free(a);
        return -EINVAL;
    }
    char line[512];
    FILE *f;
    if (allow_path) {
        a->have_allow = 1;
        f = fopen(allow_path, "re");
        if (!f) {
            snprintf(err, errlen, "%s: %s", allow_path, strerror(errno));
            auth_destroy(&a);
            return -errno;
        }
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
            if (curve_key_parse(p, z) < 0 || a->nallow >= AUTH_MAX_KEYS ||
                !(grown = realloc(a->allow, (a->nallow + 1) * sizeof *a->allow))) {
                snprintf(err, errlen, "%s:%d: not a Z85 CURVE public key (40 characters)",
                         allow_path, lineno);
                fclose(f);
                auth_destroy(&a);
                return -EINVAL;
            }
            a->allow = grown;
            zmq_z85_decode(a->allow[a->nallow++], z);
        }
        fclose(f);
    }
    *ret = a;
    return 0;
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
    if (len[5] == 5 && memcmp(f[5], "CURVE", 5) == 0 && n >= 7 && len[6] == 32) {
        if (!a->have_allow) {
            ok = 1;
        } else {
            for (size_t i = 0; i < a->nallow && !ok; i++)
                ok = memcmp(a->allow[i], f[6], 32) == 0;
        }
    } else {
        why = "CURVE required";
    }
    char z[41] = "-";
    if (n >= 7 && len[6] == 32)
        zmq_z85_encode(z, (const uint8_t *)f[6], 32);
    if (ok) {
        a->allowed++;
        log_debug("auth_allowed", "client_key=%s", z);
    } else {
        a->denied++;
        log_warn("auth_denied", "client_key=%s why=\"%s\"", z, why);
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

int auth_server_socket(const auth_t *a, void *sock)
{
    if (!a)
        return 0;
    int one = 1;
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof one) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, a->secret, 41) != 0 ||
        zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, "regmix", 6) != 0)
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
    free(a->allow);
    free(a);
}

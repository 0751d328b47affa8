/* Unit tests of common/curve: Z85 key parsing and key files (comments, blanks, bad lengths and
 * characters, missing files, with the path in the message), client key loading against libzmq's
 * own CURVE test vectors, key-pair files (modes, refusal to overwrite, --force), and real CURVE
 * handshakes over loopback TCP: the right server key is answered, a wrong one and a plain client
 * are not. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "curve.h"
#include "test.h"

/* The key pairs of libzmq's tests/test_security_curve.cpp (CurveZMQ's reference vectors). */
static const char SERVER_PUBLIC[] = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";
static const char SERVER_SECRET[] = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6";
static const char CLIENT_PUBLIC[] = "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID";
static const char CLIENT_SECRET[] = "D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs";

static char tmpdir[256];

static void write_file(const char *name, const char *text, char *path, size_t pathlen)
{
    snprintf(path, pathlen, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void test_parse(void)
{
    char k[CURVE_KEY_Z85_LEN + 1], line[128];
    CHECK_INT_EQ(curve_key_parse(SERVER_PUBLIC, k), 0);
    CHECK_STR_EQ(k, SERVER_PUBLIC);
    snprintf(line, sizeof line, " \t%s  trailing words\r\n", CLIENT_SECRET);
    CHECK_INT_EQ(curve_key_parse(line, k), 0);
    CHECK_STR_EQ(k, CLIENT_SECRET);
    snprintf(line, sizeof line, "%.39s\n", SERVER_PUBLIC);
    CHECK_INT_EQ(curve_key_parse(line, k), -EINVAL);
    snprintf(line, sizeof line, "%sx", SERVER_PUBLIC);
    CHECK_INT_EQ(curve_key_parse(line, k), -EINVAL);
    snprintf(line, sizeof line, "%s", SERVER_PUBLIC);
    line[7] = '~'; /* not in the Z85 alphabet */
    CHECK_INT_EQ(curve_key_parse(line, k), -EINVAL);
    CHECK_INT_EQ(curve_key_parse("", k), -EINVAL);
}

static void test_read(void)
{
    char path[512], err[512], k[CURVE_KEY_Z85_LEN + 1], text[256];
    snprintf(text, sizeof text, "# the coordinator\n\n   \n  %s comment\n%s\n", SERVER_PUBLIC,
             CLIENT_PUBLIC);
    write_file("ok.pub", text, path, sizeof path);
    CHECK_INT_EQ(curve_key_read(path, "CURVE public key", k, err, sizeof err), 0);
    CHECK_STR_EQ(k, SERVER_PUBLIC);

    write_file("empty.pub", "# only a comment\n\n", path, sizeof path);
    err[0] = '\0';
    CHECK_INT_EQ(curve_key_read(path, "CURVE public key", k, err, sizeof err), -EINVAL);
    CHECK_MSG(strstr(err, path) && strstr(err, "not a Z85 CURVE public key"), "err: %s", err);

    write_file("short.key", "abc\n", path, sizeof path);
    CHECK_INT_EQ(curve_key_read(path, "CURVE secret key", k, err, sizeof err), -EINVAL);
    CHECK_MSG(strstr(err, "not a Z85 CURVE secret key"), "err: %s", err);

    snprintf(path, sizeof path, "%s/none.key", tmpdir);
    CHECK_INT_EQ(curve_key_read(path, "CURVE secret key", k, err, sizeof err), -ENOENT);
    CHECK_MSG(strstr(err, path) && strstr(err, "No such file"), "err: %s", err);
}

static void test_client_load(void)
{
    char srv[512], cli[512], err[512];
    curve_client_t c;
    write_file("server.pub", SERVER_PUBLIC, srv, sizeof srv);
    write_file("client.key", CLIENT_SECRET, cli, sizeof cli);

    CHECK_INT_EQ(curve_client_load(&c, NULL, NULL, err, sizeof err), 0);
    CHECK_INT_EQ(c.enabled, 0);
    CHECK_INT_EQ(curve_client_apply(&c, NULL), 0); /* disabled: nothing to do */

    CHECK_INT_EQ(curve_client_load(&c, NULL, cli, err, sizeof err), -EINVAL);
    CHECK_MSG(strstr(err, "server's public key"), "err: %s", err);

    CHECK_INT_EQ(curve_client_load(&c, srv, cli, err, sizeof err), 0);
    CHECK_INT_EQ(c.enabled, 1);
    CHECK_STR_EQ(c.server_public, SERVER_PUBLIC);
    CHECK_STR_EQ(c.secret, CLIENT_SECRET);
    CHECK_STR_EQ(c.public_, CLIENT_PUBLIC); /* derived, equal to the reference vector */

    /* Only the server's key: a fresh pair, consistent with itself. */
    CHECK_INT_EQ(curve_client_load(&c, srv, NULL, err, sizeof err), 0);
    CHECK_INT_EQ(c.enabled, 1);
    char derived[CURVE_KEY_Z85_LEN + 1];
    CHECK_INT_EQ(zmq_curve_public(derived, c.secret), 0);
    CHECK_STR_EQ(derived, c.public_);
    CHECK(strcmp(c.public_, CLIENT_PUBLIC) != 0);

    /* A bad file is an error naming it. */
    char bad[512];
    write_file("bad.key", "not a key\n", bad, sizeof bad);
    CHECK_INT_EQ(curve_client_load(&c, srv, bad, err, sizeof err), -EINVAL);
    CHECK_MSG(strstr(err, bad) && strstr(err, "secret key"), "err: %s", err);
    CHECK_INT_EQ(curve_client_load(&c, bad, cli, err, sizeof err), -EINVAL);
    CHECK_MSG(strstr(err, bad) && strstr(err, "public key"), "err: %s", err);
}

static int file_mode(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int)(st.st_mode & 0777) : -1;
}

static void test_keypair_write(void)
{
    char prefix[512], key[600], pub[600], err[512], out[CURVE_KEY_Z85_LEN + 1];
    char sec1[CURVE_KEY_Z85_LEN + 1], pub1[CURVE_KEY_Z85_LEN + 1], derived[CURVE_KEY_Z85_LEN + 1];
    snprintf(prefix, sizeof prefix, "%s/pair", tmpdir);
    snprintf(key, sizeof key, "%s.key", prefix);
    snprintf(pub, sizeof pub, "%s.pub", prefix);
    CHECK_INT_EQ(curve_keypair_write(prefix, 0, out, err, sizeof err), 0);
    CHECK_INT_EQ(file_mode(key), 0600);
    CHECK_INT_EQ(file_mode(pub), 0644);
    CHECK_INT_EQ(curve_key_read(key, "CURVE secret key", sec1, err, sizeof err), 0);
    CHECK_INT_EQ(curve_key_read(pub, "CURVE public key", pub1, err, sizeof err), 0);
    CHECK_STR_EQ(pub1, out);
    CHECK_INT_EQ(zmq_curve_public(derived, sec1), 0);
    CHECK_STR_EQ(derived, pub1);
    struct stat st;
    CHECK(stat(key, &st) == 0 && st.st_size == CURVE_KEY_Z85_LEN + 1);

    /* Existing files are kept. */
    CHECK_INT_EQ(curve_keypair_write(prefix, 0, out, err, sizeof err), -EEXIST);
    CHECK_MSG(strstr(err, ".key") && strstr(err, "exists"), "err: %s", err);
    char again[CURVE_KEY_Z85_LEN + 1];
    CHECK_INT_EQ(curve_key_read(key, "CURVE secret key", again, err, sizeof err), 0);
    CHECK_STR_EQ(again, sec1);
    /* Only the .pub exists: still refused, and no .key is written. */
    char prefix2[512], key2[600], pub2[600];
    snprintf(prefix2, sizeof prefix2, "%s/half", tmpdir);
    snprintf(key2, sizeof key2, "%s.key", prefix2);
    write_file("half.pub", "x\n", pub2, sizeof pub2);
    CHECK_INT_EQ(curve_keypair_write(prefix2, 0, NULL, err, sizeof err), -EEXIST);
    CHECK(access(key2, F_OK) != 0);

    /* Overwrite: new keys, and the secret file is 0600 again even if it was not. */
    CHECK_INT_EQ(chmod(key, 0644), 0);
    CHECK_INT_EQ(curve_keypair_write(prefix, 1, out, err, sizeof err), 0);
    CHECK_INT_EQ(file_mode(key), 0600);
    CHECK_INT_EQ(curve_key_read(key, "CURVE secret key", again, err, sizeof err), 0);
    CHECK(strcmp(again, sec1) != 0);
    CHECK_INT_EQ(curve_keypair_write("", 0, NULL, err, sizeof err), -EINVAL);
}

/* The CURVE ROUTER of test_handshake: answers every "ping" that arrives within `ms` ms. */
static void *server_ctx;
static void *server_sock;
static int server_count;

static void server_pump(int ms)
{
    zmq_pollitem_t pi = {server_sock, 0, ZMQ_POLLIN, 0};
    while (zmq_poll(&pi, 1, ms) > 0) {
        char id[256], buf[16];
        int idn = zmq_recv(server_sock, id, sizeof id, 0);
        int n = zmq_recv(server_sock, buf, sizeof buf, 0);
        if (idn > 0 && n == 4) {
            server_count++;
            zmq_send(server_sock, id, (size_t)idn, ZMQ_SNDMORE);
            zmq_send(server_sock, "pong", 4, 0);
        }
    }
}

/* Sends "ping" from a DEALER set up by `c`; 1 when "pong" comes back. */
static int run_client(void *ctx, const char *endpoint, const curve_client_t *c)
{
    /* One thread: the server is pumped between polls of the client, for at most 1.5 s. */
    void *d = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(d, ZMQ_LINGER, &zero, sizeof zero);
    int ok = 0;
    if (curve_client_apply(c, d) == 0 && zmq_connect(d, endpoint) == 0 &&
        zmq_send(d, "ping", 4, ZMQ_DONTWAIT) == 4) {
        for (int i = 0; i < 15 && !ok; i++) {
            server_pump(50);
            zmq_pollitem_t pi = {d, 0, ZMQ_POLLIN, 0};
            if (zmq_poll(&pi, 1, 50) > 0) {
                char buf[16];
                ok = zmq_recv(d, buf, sizeof buf, 0) == 4 && memcmp(buf, "pong", 4) == 0;
            }
        }
    }
    zmq_close(d);
    return ok;
}

static void test_handshake(void)
{
    server_ctx = zmq_ctx_new();
    server_sock = zmq_socket(server_ctx, ZMQ_ROUTER);
    int one = 1, zero = 0;
    CHECK_INT_EQ(zmq_setsockopt(server_sock, ZMQ_LINGER, &zero, sizeof zero), 0);
    CHECK_INT_EQ(zmq_setsockopt(server_sock, ZMQ_CURVE_SERVER, &one, sizeof one), 0);
    CHECK_INT_EQ(zmq_setsockopt(server_sock, ZMQ_CURVE_SECRETKEY, SERVER_SECRET, 41), 0);
    CHECK_INT_EQ(zmq_bind(server_sock, "tcp://127.0.0.1:*"), 0);
    char endpoint[256];
    size_t len = sizeof endpoint;
    CHECK_INT_EQ(zmq_getsockopt(server_sock, ZMQ_LAST_ENDPOINT, endpoint, &len), 0);

    char srv[512], cli[512], wrong[512], err[512];
    write_file("hs-server.pub", SERVER_PUBLIC, srv, sizeof srv);
    write_file("hs-client.key", CLIENT_SECRET, cli, sizeof cli);
    write_file("hs-wrong.pub", CLIENT_PUBLIC, wrong, sizeof wrong);
    void *ctx = zmq_ctx_new();
    curve_client_t c;

    CHECK_INT_EQ(curve_client_load(&c, srv, cli, err, sizeof err), 0);
    CHECK_MSG(run_client(ctx, endpoint, &c), "the right keys got no answer");
    CHECK_INT_EQ(server_count, 1);

    CHECK_INT_EQ(curve_client_load(&c, srv, NULL, err, sizeof err), 0);
    CHECK_MSG(run_client(ctx, endpoint, &c), "an ephemeral key pair got no answer");
    CHECK_INT_EQ(server_count, 2);

    CHECK_INT_EQ(curve_client_load(&c, wrong, cli, err, sizeof err), 0);
    CHECK_MSG(!run_client(ctx, endpoint, &c), "a wrong server key was answered");
    CHECK_INT_EQ(curve_client_load(&c, NULL, NULL, err, sizeof err), 0);
    CHECK_MSG(!run_client(ctx, endpoint, &c), "a plain client was answered");
    CHECK_INT_EQ(server_count, 2);

    zmq_ctx_term(ctx);
    zmq_close(server_sock);
    zmq_ctx_term(server_ctx);
}

int main(void)
{
    if (!zmq_has("curve")) {
        test_skip("libzmq without CURVE");
        return test_finish();
    }
    umask(022);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/regmix-test-curve-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    TEST_RUN(test_parse);
    TEST_RUN(test_read);
    TEST_RUN(test_client_load);
    TEST_RUN(test_keypair_write);
    TEST_RUN(test_handshake);
    return test_finish_tmpdir(tmpdir, "test files");
}

/*
 * driver: runs a libFuzzer target without libFuzzer, for the `fuzz` test suite. It replays every
 * file named on the command line (or found in a named directory: the committed regression inputs),
 * then feeds deterministic mutations of them (bit flips, byte sets, truncations, splices,
 * duplicated spans) for --iterations rounds. A crash, a sanitizer report or a non-zero return from
 * the target fails the test. Linked with libFuzzer instead (-Dfuzz=enabled, scripts/fuzz.sh), the
 * same target runs under real coverage-guided fuzzing.
 */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct input {
    uint8_t *data;
    size_t size;
} input_t;

static input_t *inputs;
static size_t n_inputs, cap_inputs;

static void add_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "driver: cannot open %s\n", path);
        exit(2);
    }
    uint8_t *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 4096;
            buf = realloc(buf, cap);
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        if (r == 0)
            break;
        n += r;
    }
    fclose(f);
    if (n_inputs == cap_inputs) {
        cap_inputs = cap_inputs ? cap_inputs * 2 : 64;
        inputs = realloc(inputs, cap_inputs * sizeof *inputs);
    }
    inputs[n_inputs++] = (input_t){buf, n};
}

static void add_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "driver: no such file or directory: %s\n", path);
        exit(2);
    }
    if (!S_ISDIR(st.st_mode)) {
        add_file(path);
        return;
    }
    /* In name order: the mutations depend on the inputs' order, so the test is the same test on
     * every file system. */
    struct dirent **names = NULL;
    int n = scandir(path, &names, NULL, alphasort);
    for (int i = 0; i < n; i++) {
        if (names[i]->d_name[0] != '.') {
            char sub[4096];
            snprintf(sub, sizeof sub, "%s/%s", path, names[i]->d_name);
            add_path(sub);
        }
        free(names[i]);
    }
    free(names);
}

/* The input being run, written to ./fuzz-crash.bin when the target crashes, to reproduce it. */
static const uint8_t *current;
static size_t current_size;

static void on_crash(int sig)
{
    int fd = open("fuzz-crash.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
        ssize_t w = write(fd, current, current_size);
        (void)w;
        close(fd);
    }
    static const char msg[] = "driver: crashing input written to fuzz-crash.bin\n";
    ssize_t w = write(2, msg, sizeof msg - 1);
    (void)w;
    signal(sig, SIG_DFL);
    raise(sig);
}

static int run_one(const uint8_t *data, size_t size)
{
    current = data;
    current_size = size;
    return LLVMFuzzerTestOneInput(data, size);
}

static uint64_t rng_state = 0x243f6a8885a308d3ull;

static uint64_t next(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static size_t mutate(const input_t *a, const input_t *b, uint8_t *out, size_t cap)
{
    size_t n = a->size < cap ? a->size : cap;
    memcpy(out, a->data, n);
    int ops = 1 + (int)(next() % 4);
    for (int i = 0; i < ops; i++) {
        switch (next() % 6) {
        case 0: /* flip a bit */
            if (n)
                out[next() % n] ^= (uint8_t)(1u << (next() % 8));
            break;
        case 1: /* set a byte to an interesting value */
            if (n) {
                static const uint8_t v[] = {0, 1, 0x7f, 0x80, 0xff, 0x0a, 0x22};
                out[next() % n] = v[next() % sizeof v];
            }
            break;
        case 2: /* truncate */
            if (n)
                n = next() % n;
            break;
        case 3: { /* splice the tail of another input */
            size_t at = n ? next() % n : 0;
            size_t from = b->size ? next() % b->size : 0;
            size_t len = b->size - from;
            if (at + len > cap)
                len = cap - at;
            memcpy(out + at, b->data + from, len);
            n = at + len;
            break;
        }
        case 4: { /* duplicate a span */
            if (!n)
                break;
            size_t from = next() % n, len = 1 + next() % 16;
            if (from + len > n)
                len = n - from;
            if (n + len <= cap) {
                memmove(out + from + len, out + from, n - from);
                n += len;
            }
            break;
        }
        default: /* insert a random byte */
            if (n < cap) {
                size_t at = n ? next() % (n + 1) : 0;
                memmove(out + at + 1, out + at, n - at);
                out[at] = (uint8_t)next();
                n++;
            }
            break;
        }
    }
    return n;
}

int main(int argc, char **argv)
{
    long iterations = 20000;
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "--iterations=", 13) == 0)
            iterations = atol(argv[i] + 13);
        else if (strncmp(argv[i], "--seed=", 7) == 0)
            rng_state = strtoull(argv[i] + 7, NULL, 0) | 1;
        else
            add_path(argv[i]);
    }
    if (n_inputs == 0) {
        fprintf(stderr, "usage: %s [--iterations=N] [--seed=S] FILE|DIR...\n", argv[0]);
        return 2;
    }
    signal(SIGABRT, on_crash);
    signal(SIGSEGV, on_crash);
    signal(SIGBUS, on_crash);
    for (size_t i = 0; i < n_inputs; i++)
        if (run_one(inputs[i].data, inputs[i].size) != 0)
            return 1;
    size_t cap = 1 << 16;
    uint8_t *buf = malloc(cap);
    for (long it = 0; it < iterations; it++) {
        const input_t *a = &inputs[next() % n_inputs];
        const input_t *b = &inputs[next() % n_inputs];
        size_t n = mutate(a, b, buf, cap);
        /* An exact-size heap copy lets ASan see reads past the end. */
        uint8_t *exact = malloc(n ? n : 1);
        memcpy(exact, buf, n);
        if (run_one(exact, n) != 0)
            return 1;
        free(exact);
    }
    free(buf);
    for (size_t i = 0; i < n_inputs; i++)
        free(inputs[i].data);
    free(inputs);
    fprintf(stderr, "driver: %zu inputs replayed, %ld mutations run\n", n_inputs, iterations);
    return 0;
}

/*
 * test_train_data: the mixture sampler and the validation set (train/data.h).
 *
 * Three domains whose shards hold one distinct token value each, so a sampled sequence tells its
 * domain. Fixed seed, 20000 draws: a weight-0 domain is never drawn; the others' shares are
 * within 0.015 of their normalised weights (> 4 standard deviations); draws are a pure function
 * of (seed, index); validation sequences are the first non-overlapping windows.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "data.h"
#include "test.h"

static char dir[] = "/tmp/regmix-train-data.XXXXXX";

static void write_shard(const char *name, uint16_t value, int count, int step)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    int32_t hdr[256] = {20240520, 1, count};
    fwrite(hdr, sizeof hdr, 1, f);
    for (int i = 0; i < count; i++) {
        uint16_t t = (uint16_t)(value + (step ? i : 0));
        fwrite(&t, 2, 1, f);
    }
    fclose(f);
}

static void test_sampler(void)
{
    CHECK(mkdtemp(dir) != NULL);
    write_shard("a.bin", 1, 500, 0);
    write_shard("b1.bin", 2, 300, 0);
    write_shard("b2.bin", 2, 40, 0); /* shorter than context + 1: never a window */
    write_shard("b3.bin", 2, 900, 0);
    write_shard("c.bin", 3, 500, 0);
    write_shard("va.bin", 10, 100, 1); /* tokens 10, 11, 12, ... */
    data_t *d = NULL;
    char err[512], spec[512];
    CHECK(data_new(1000, &d) == 0);
    snprintf(spec, sizeof spec, "a=%s/a.bin", dir);
    CHECK(data_add(d, spec, 0, err, sizeof err) == 0);
    snprintf(spec, sizeof spec, "b=%s/b*.bin", dir);
    CHECK(data_add(d, spec, 0, err, sizeof err) == 0);
    snprintf(spec, sizeof spec, "c=%s/c.bin", dir);
    CHECK(data_add(d, spec, 0, err, sizeof err) == 0);
    snprintf(spec, sizeof spec, "a=%s/va.bin", dir);
    CHECK(data_add(d, spec, 1, err, sizeof err) == 0);
    CHECK(data_set_weights(d, "a=1,b=3,c=0", err, sizeof err) == 0);
    CHECK(data_prepare(d, 63, err, sizeof err) == 0);
    CHECK_NEAR(data_domain_weight(d, 0), 0.25, 1e-12);
    CHECK_NEAR(data_domain_weight(d, 2), 0.0, 0.0);

    int counts[4] = {0}, n = 20000, bad = 0;
    int32_t seq[64], again[64];
    for (int g = 0; g < n; g++) {
        data_sample(d, 7, (uint64_t)g, seq);
        for (int i = 1; i < 64; i++)
            bad += seq[i] != seq[0];
        counts[seq[0] <= 3 ? seq[0] : 0]++;
    }
    CHECK_INT_EQ(bad, 0);
    CHECK_INT_EQ(counts[3], 0);
    CHECK_INT_EQ(counts[1] + counts[2], n);
    CHECK_NEAR((double)counts[1] / n, 0.25, 0.015);
    /* Same (seed, index), same sequence; another seed, another stream. */
    data_sample(d, 7, 12345, seq);
    data_sample(d, 7, 12345, again);
    CHECK(memcmp(seq, again, sizeof seq) == 0);
    int differ = 0;
    for (int g = 0; g < 50; g++) {
        data_sample(d, 7, (uint64_t)g, seq);
        data_sample(d, 8, (uint64_t)g, again);
        differ += seq[0] != again[0];
    }
    CHECK(differ > 5);

    /* Validation: 99 / 63 = 1 window of 64 tokens starting at token 10. */
    CHECK_INT_EQ(data_valid_count(d, 0, 100), 1);
    CHECK_INT_EQ(data_valid_count(d, 1, 100), 0);
    data_valid_sequence(d, 0, 0, seq);
    CHECK_INT_EQ(seq[0], 10);
    CHECK_INT_EQ(seq[63], 73);

    /* Weights JSON, unknown domains, all zero. */
    CHECK(data_set_weights_json(d, "{\"a\": 2, \"b\": 2}", err, sizeof err) == 0);
    CHECK(data_set_weights(d, "a=1,zzz=1", err, sizeof err) == -EINVAL);
    CHECK(strstr(err, "zzz") != NULL);
    CHECK(data_set_weights(d, "a=-1", err, sizeof err) == -EINVAL);
    CHECK(data_set_weights(d, "a=0", err, sizeof err) == 0);
    CHECK(data_prepare(d, 63, err, sizeof err) == -EINVAL);
    data_destroy(&d);
    CHECK(d == NULL);

    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
}

int main(void)
{
    TEST_RUN(test_sampler);
    return test_finish();
}

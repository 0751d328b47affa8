/*
 * test_strv: common/strv.c: pushes grow the vector and keep it NULL-terminated, formatted pushes,
 * a formatted string over the limit poisons the vector (strv_take frees and returns NULL), an
 * empty vector takes as NULL, and strv_free(NULL) is a no-op.
 */
#include <stdio.h>
#include <string.h>

#include "strv.h"
#include "test.h"

static void test_push_many(void)
{
    strv_t s = {0};
    char want[32];
    for (int i = 0; i < 1000; i++)
        strv_pushf(&s, "arg%d", i);
    strv_push(&s, NULL); /* an absent value is an empty argument, not the end of argv */
    CHECK_INT_EQ(s.n, 1001);
    char **v = strv_take(&s);
    CHECK(v != NULL);
    CHECK(s.v == NULL && s.n == 0);
    int n = 0;
    while (v && v[n])
        n++;
    CHECK_INT_EQ(n, 1001);
    for (int i = 0; v && i < 1000; i++) {
        snprintf(want, sizeof want, "arg%d", i);
        CHECK_STR_EQ(v[i], want);
    }
    if (v)
        CHECK_STR_EQ(v[1000], "");
    strv_free(v);
}

static void test_too_long_poisons(void)
{
    strv_t s = {0};
    static char big[9000];
    memset(big, 'x', sizeof big - 1);
    strv_push(&s, "mpirun");
    strv_pushf(&s, "%s", big); /* over the 8191-byte limit of a formatted push */
    CHECK(s.oom);
    strv_push(&s, "after"); /* a no-op now */
    CHECK_INT_EQ(s.n, 1);
    CHECK(strv_take(&s) == NULL);
    CHECK(s.v == NULL);
}

static void test_empty(void)
{
    strv_t s = {0};
    CHECK(strv_take(&s) == NULL);
    strv_free(NULL);
}

int main(void)
{
    TEST_RUN(test_push_many);
    TEST_RUN(test_too_long_poisons);
    TEST_RUN(test_empty);
    return test_finish();
}

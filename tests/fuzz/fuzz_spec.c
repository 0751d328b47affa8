/*
 * fuzz_spec: parsing of untrusted sweep specs (common/spec.h), which the coordinator receives over
 * the network. Whatever the bytes, parsing returns a spec or a one-line error naming the input;
 * a parsed spec renders its JSON views without failing.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    spec_t *spec = NULL;
    char err[512] = "";
    int r = spec_parse_string("fuzz.yaml", (const char *)data, size, &spec, err, sizeof err);
    if (r != 0) {
        /* Every rejection says where: the name it was given starts the message. */
        if (strncmp(err, "fuzz.yaml", 9) != 0 && r != -ENOMEM)
            abort();
        return 0;
    }
    char *a = spec_train_json(spec, SPEC_STAGE_PROXY);
    char *b = spec_train_json(spec, SPEC_STAGE_TARGET);
    char *c = spec_domains_json(spec);
    if (!a || !b || !c)
        abort();
    free(a);
    free(b);
    free(c);
    spec_destroy(&spec);
    return 0;
}

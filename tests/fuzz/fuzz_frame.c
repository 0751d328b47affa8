/*
 * fuzz_frame: decoding of untrusted Envelope bytes (common/frame.h). Whatever the input, decoding
 * returns an Envelope or an error without crashing; a decoded Envelope re-encodes, and the
 * re-encoding decodes to the same bytes again (protobuf-c is canonical on re-encode).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Regmix__Envelope *env = NULL;
    uint64_t id = 0;
    const char *why = NULL;
    if (frame_unpack(data, size, 0, &env, &id, &why) != 0)
        return 0;
    (void)frame_body_name(env->body_case);
    uint8_t *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    if (frame_pack(env, &a, &na) == 0) {
        Regmix__Envelope *again = NULL;
        if (frame_unpack(a, na, 0, &again, &id, &why) != 0)
            abort(); /* what we encoded must decode */
        if (frame_pack(again, &b, &nb) != 0 || na != nb || memcmp(a, b, na) != 0)
            abort(); /* and re-encode to the same bytes */
        frame_free(&again);
    }
    free(a);
    free(b);
    frame_free(&env);
    return 0;
}

/*
 * slurp: a whole file into memory, with a size limit. Every program that reads a file whole
 * (specs, CSV tables, a document to tokenize, a spec to submit) goes through here, so each gets
 * the same handling of pipes, directories, interrupted reads and oversized input.
 *
 * The file is read until EOF rather than trusting st_size, so pipes and growing files work too;
 * at most max_bytes + 1 bytes are ever read (the extra byte only tells "too large").
 * Nothing here prints: slurp_error() words a failure the same way for every caller.
 */
#ifndef REGMIX_SLURP_H
#define REGMIX_SLURP_H

#include <stddef.h>

/*
 * Reads all of `path` (at most `max_bytes`). Returns 0 with *ret_data (malloc'd, NUL-terminated
 * after *ret_len bytes; the caller frees it) and *ret_len, or a negative errno: -EISDIR for a
 * directory, -EFBIG for a file larger than max_bytes, -ENOMEM, or open's and read's errors.
 * Outputs are untouched on failure.
 */
int slurp_file(const char *path, size_t max_bytes, char **ret_data, size_t *ret_len);

/*
 * Writes into err (errbuf.h) why slurp_file(path, max_bytes, ...) returned rc < 0, naming the
 * file: "PATH: larger than the limit of N bytes", "PATH: is a directory" or "PATH: <strerror>".
 */
void slurp_error(char *err, size_t errlen, const char *path, size_t max_bytes, int rc);

#endif

/*
 * csv: a reader and writer of RFC 4180 comma-separated tables, the format of the RegMix paper's
 * released data and of `regmixctl sample` output.
 *
 * The reader loads a whole file (or string) into an immutable table of strings: a header row of
 * column names, then rows with exactly as many fields. It accepts quoted fields with embedded
 * commas, doubled quotes and newlines, LF or CRLF line ends, a missing final line end, a UTF-8
 * byte-order mark, and blank lines (skipped). An empty last header cell (a header ending in a
 * comma) is dropped, and rows may then omit that field or leave it empty. Everything else that is
 * malformed is an error whose message names the file, the 1-based physical line and, where it
 * applies, the column: ragged rows, unterminated quotes, text after a closing quote, a quote
 * inside an unquoted field, a bare CR, NUL bytes, duplicate or empty column names.
 *
 * The table owns every string it hands out; they stay valid until csv_destroy(). Row and column
 * indices are 0-based; rows do not count the header. Functions that take `err` write a one-line
 * message there on failure (when err is non-NULL) and leave their outputs untouched.
 */
#ifndef REGMIX_CSV_H
#define REGMIX_CSV_H

#include <stddef.h>
#include <stdio.h>

/* Largest file or string the reader accepts (bytes). */
#define CSV_MAX_BYTES (1u << 30)

typedef struct csv csv_t;

/* Reads and parses the file at `path`; on success *ret is a new table the caller frees with
 * csv_destroy(). Returns 0, -errno from the file system, -EFBIG over CSV_MAX_BYTES, -EINVAL on
 * malformed content, -ENOMEM. */
int csv_read_file(const char *path, csv_t **ret, char *err, size_t errlen);

/* Parses `len` bytes of `text`; `name` stands in for the file name in messages and csv_name().
 * Same returns as csv_read_file(). */
int csv_read_string(
        const char *name, const char *text, size_t len, csv_t **ret, char *err, size_t errlen);

/* Frees the table and sets *self_p to NULL; NULL or *self_p == NULL is a harmless no-op. */
void csv_destroy(csv_t **self_p);

/* The file name (or the name given to csv_read_string()). */
const char *csv_name(const csv_t *csv);

/* Number of data rows (the header excluded). */
int csv_nrows(const csv_t *csv);

/* Number of columns. */
int csv_ncols(const csv_t *csv);

/* Name of column `col` (0 <= col < ncols). */
const char *csv_col_name(const csv_t *csv, int col);

/* Index of the column named exactly `name`, or -ENOENT. */
int csv_col(const csv_t *csv, const char *name);

/* Field text of (row, col), unquoted; never NULL for valid indices. */
const char *csv_get(const csv_t *csv, int row, int col);

/* 1-based physical line of the file where data row `row` starts (the header is on line >= 1). */
int csv_line(const csv_t *csv, int row);

/* Parses field (row, col) as a finite double (leading/trailing blanks allowed) into *out.
 * Returns 0, or -EINVAL for empty, non-numeric, NaN, infinite or out-of-range text, with a
 * message naming file:line and the column. */
int csv_get_double(const csv_t *csv, int row, int col, double *out, char *err, size_t errlen);

/* Parses field (row, col) as a base-10 integer into *out; returns 0 or -EINVAL with a message
 * naming file:line and the column. */
int csv_get_long(const csv_t *csv, int row, int col, long *out, char *err, size_t errlen);

/* Flags of csv_join(). */
enum {
    CSV_JOIN_ALLOW_EXTRA_B = 1, /* rows of b whose key is not in a are allowed (ignored) */
};

/* Matches the rows of `a` to the rows of `b` on exactly equal key strings (a's column key_a, b's
 * column key_b). On success *ret_b_rows is a malloc'd array of csv_nrows(a) entries, the row of b
 * for each row of a; the caller frees it. Errors (-EINVAL, message naming file:line): a key
 * duplicated in a or in b, a key of a missing from b, and (unless CSV_JOIN_ALLOW_EXTRA_B) a key of
 * b missing from a. -ERANGE for a bad column index, -ENOMEM. */
int csv_join(const csv_t *a,
             int key_a,
             const csv_t *b,
             int key_b,
             int flags,
             int **ret_b_rows,
             char *err,
             size_t errlen);

/* Writes one record of `n` fields to `f`, quoting a field only where it holds a comma, quote, CR,
 * LF, or leading/trailing blank, and ending it with LF. NULL fields are written empty. Returns 0
 * or -EIO when the stream reports an error. */
int csv_write_row(FILE *f, const char *const *fields, int n);

/* Writes one field (quoted as csv_write_row() does) without separator or line end; callers
 * build a row with it, putc(',') between fields and putc('\n') at the end. Returns 0 or -EIO. */
int csv_write_field(FILE *f, const char *field);

#endif

/* csv: RFC 4180 reader into an immutable table of strings, and a quoting writer (see csv.h). */
#include "csv.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errbuf.h"
#include "slurp.h"

/* Bound on columns: the header's uniqueness check is quadratic and no sane table is wider. */
#define CSV_MAX_COLS 4096

struct csv {
    char *name;
    char *buf;          /* every field, unquoted, NUL-terminated, back to back */
    const char **names; /* [ncols] into buf */
    const char **cells; /* [nrows * ncols] into buf, row-major */
    int *lines;         /* [nrows] physical line where each row starts */
    int nrows;
    int ncols;
};

/* One parsed record before the table is assembled. */
typedef struct rec {
    size_t first; /* index of its first field in the field-offset array */
    int nfields;
    int line;
} rec_t;

/* Grows *arr (elements of `size` bytes, capacity *cap) to hold at least `need` elements. */
static int grow(void **arr, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap : 64;
    while (ncap < need)
        ncap *= 2;
    void *p = realloc(*arr, ncap * size);
    if (!p)
        return -ENOMEM;
    *arr = p;
    *cap = ncap;
    return 0;
}

void csv_destroy(csv_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    csv_t *c = *self_p;
    free(c->name);
    free(c->buf);
    free(c->names);
    free(c->cells);
    free(c->lines);
    free(c);
    *self_p = NULL;
}

int csv_read_string(
        const char *name, const char *text, size_t len, csv_t **ret, char *err, size_t errlen)
{
    if (!name)
        name = "(string)";
    if (len > CSV_MAX_BYTES) {
        errbuf_set(err, errlen, "%s: larger than %u bytes", name, CSV_MAX_BYTES);
        return -EFBIG;
    }
    int rc = -ENOMEM;
    csv_t *c = calloc(1, sizeof *c);
    size_t *offs = NULL, ocap = 0, nf = 0;
    rec_t *recs = NULL;
    size_t rcap = 0, nrec = 0;
    if (!c)
        goto fail;
    c->name = strdup(name);
    /* Each field adds at most one NUL and every byte yields at most one output byte. */
    c->buf = malloc(2 * len + 2);
    if (!c->name || !c->buf)
        goto fail;

    size_t pos = 0, out = 0;
    int line = 1;
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        pos = 3;
    rc = -EINVAL;
    while (pos < len) {
        /* Blank lines between records carry no data. */
        if (text[pos] == '\n') {
            pos++;
            line++;
            continue;
        }
        if (text[pos] == '\r' && pos + 1 < len && text[pos + 1] == '\n') {
            pos += 2;
            line++;
            continue;
        }
        if (grow((void **)&recs, &rcap, nrec + 1, sizeof *recs) < 0) {
            rc = -ENOMEM;
            goto fail;
        }
        if (line == INT_MAX) {
            errbuf_set(err, errlen, "%s:%d: too many lines", name, line);
            goto fail;
        }
        rec_t *r = &recs[nrec++];
        r->first = nf;
        r->nfields = 0;
        r->line = line;
        for (;;) {
            if (grow((void **)&offs, &ocap, nf + 1, sizeof *offs) < 0) {
                rc = -ENOMEM;
                goto fail;
            }
            offs[nf++] = out;
            r->nfields++;
            if (pos < len && text[pos] == '"') {
                int qline = line;
                pos++;
                for (;;) {
                    if (pos >= len) {
                        errbuf_set(err, errlen, "%s:%d: unterminated quoted field (field %d)", name,
                                   qline, r->nfields);
                        goto fail;
                    }
                    char ch = text[pos];
                    if (ch == '"') {
                        if (pos + 1 < len && text[pos + 1] == '"') {
                            c->buf[out++] = '"';
                            pos += 2;
                            continue;
                        }
                        pos++;
                        break;
                    }
                    if (ch == '\0') {
                        errbuf_set(err, errlen, "%s:%d: NUL byte in field %d", name, line,
                                   r->nfields);
                        goto fail;
                    }
                    if (ch == '\n')
                        line++;
                    c->buf[out++] = ch;
                    pos++;
                }
                if (pos < len && text[pos] != ',' && text[pos] != '\n' && text[pos] != '\r') {
                    errbuf_set(err, errlen, "%s:%d: text after the closing quote of field %d", name,
                               line, r->nfields);
                    goto fail;
                }
            } else {
                while (pos < len && text[pos] != ',' && text[pos] != '\n' && text[pos] != '\r') {
                    char ch = text[pos];
                    if (ch == '"') {
                        errbuf_set(err, errlen,
                                   "%s:%d: quote inside unquoted field %d (quote the whole field)",
                                   name, line, r->nfields);
                        goto fail;
                    }
                    if (ch == '\0') {
                        errbuf_set(err, errlen, "%s:%d: NUL byte in field %d", name, line,
                                   r->nfields);
                        goto fail;
                    }
                    c->buf[out++] = ch;
                    pos++;
                }
            }
            c->buf[out++] = '\0';
            if (pos >= len)
                break;
            if (text[pos] == ',') {
                pos++;
                continue;
            }
            if (text[pos] == '\r') {
                if (pos + 1 >= len || text[pos + 1] != '\n') {
                    errbuf_set(err, errlen, "%s:%d: carriage return without line feed", name, line);
                    goto fail;
                }
                pos++;
            }
            pos++; /* the '\n' */
            line++;
            break;
        }
    }

    if (nrec == 0) {
        errbuf_set(err, errlen, "%s:1: empty file: no header row", name);
        goto fail;
    }
    int ncols = recs[0].nfields;
    int drop_trailing = 0;
    if (ncols > 1 && c->buf[offs[ncols - 1]] == '\0') {
        drop_trailing = 1;
        ncols--;
    }
    if (ncols > CSV_MAX_COLS) {
        errbuf_set(err, errlen, "%s:%d: %d columns, more than the limit %d", name, recs[0].line,
                   ncols, CSV_MAX_COLS);
        goto fail;
    }
    for (int j = 0; j < ncols; j++) {
        const char *nj = c->buf + offs[j];
        if (!*nj) {
            errbuf_set(err, errlen, "%s:%d: column %d has an empty name", name, recs[0].line,
                       j + 1);
            goto fail;
        }
        for (int i = 0; i < j; i++)
            if (strcmp(c->buf + offs[i], nj) == 0) {
                errbuf_set(err, errlen, "%s:%d: duplicate column name '%.64s' (columns %d and %d)",
                           name, recs[0].line, nj, i + 1, j + 1);
                goto fail;
            }
    }
    for (size_t i = 1; i < nrec; i++) {
        const rec_t *r = &recs[i];
        if (r->nfields == ncols)
            continue;
        if (drop_trailing && r->nfields == ncols + 1 &&
            c->buf[offs[r->first + (size_t)ncols]] == '\0')
            continue;
        errbuf_set(err, errlen, "%s:%d: row has %d fields, the header has %d", name, r->line,
                   r->nfields, ncols);
        goto fail;
    }
    if (nrec - 1 > (size_t)INT_MAX / (size_t)ncols) {
        errbuf_set(err, errlen, "%s: too many rows", name);
        goto fail;
    }

    rc = -ENOMEM;
    c->ncols = ncols;
    c->nrows = (int)(nrec - 1);
    c->names = malloc((size_t)ncols * sizeof *c->names);
    c->cells = malloc(((size_t)c->nrows * (size_t)ncols + 1) * sizeof *c->cells);
    c->lines = malloc(((size_t)c->nrows + 1) * sizeof *c->lines);
    if (!c->names || !c->cells || !c->lines)
        goto fail;
    for (int j = 0; j < ncols; j++)
        c->names[j] = c->buf + offs[j];
    for (int i = 0; i < c->nrows; i++) {
        const rec_t *r = &recs[i + 1];
        c->lines[i] = r->line;
        for (int j = 0; j < ncols; j++)
            c->cells[(size_t)i * (size_t)ncols + (size_t)j] = c->buf + offs[r->first + (size_t)j];
    }
    free(offs);
    free(recs);
    *ret = c;
    return 0;

fail:
    if (rc == -ENOMEM)
        errbuf_set(err, errlen, "%s: out of memory", name);
    free(offs);
    free(recs);
    csv_destroy(&c);
    return rc;
}

int csv_read_file(const char *path, csv_t **ret, char *err, size_t errlen)
{
    char *text = NULL;
    size_t len = 0;
    int rc = slurp_file(path, CSV_MAX_BYTES, &text, &len);
    if (rc < 0) {
        slurp_error(err, errlen, path, CSV_MAX_BYTES, rc);
        return rc;
    }
    rc = csv_read_string(path, text, len, ret, err, errlen);
    free(text);
    return rc;
}

const char *csv_name(const csv_t *csv)
{
    return csv->name;
}

int csv_nrows(const csv_t *csv)
{
    return csv->nrows;
}

int csv_ncols(const csv_t *csv)
{
    return csv->ncols;
}

const char *csv_col_name(const csv_t *csv, int col)
{
    if (col < 0 || col >= csv->ncols)
        return NULL;
    return csv->names[col];
}

int csv_col(const csv_t *csv, const char *name)
{
    for (int j = 0; j < csv->ncols; j++)
        if (strcmp(csv->names[j], name) == 0)
            return j;
    return -ENOENT;
}

const char *csv_get(const csv_t *csv, int row, int col)
{
    if (row < 0 || row >= csv->nrows || col < 0 || col >= csv->ncols)
        return NULL;
    return csv->cells[(size_t)row * (size_t)csv->ncols + (size_t)col];
}

int csv_line(const csv_t *csv, int row)
{
    if (row < 0 || row >= csv->nrows)
        return 0;
    return csv->lines[row];
}

/* Copies the field without surrounding blanks into buf (truncating); returns its length. */
static size_t field_trimmed(const char *s, char *buf, size_t bufsz)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    if (n >= bufsz)
        n = bufsz - 1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return n;
}

int csv_get_double(const csv_t *csv, int row, int col, double *out, char *err, size_t errlen)
{
    const char *s = csv_get(csv, row, col);
    if (!s) {
        errbuf_set(err, errlen, "%s: no cell at row %d, column %d", csv->name, row, col);
        return -ERANGE;
    }
    char buf[128];
    size_t n = field_trimmed(s, buf, sizeof buf);
    if (n == 0) {
        errbuf_set(err, errlen, "%s:%d: column '%.64s': empty field where a number is expected",
                   csv->name, csv->lines[row], csv->names[col]);
        return -EINVAL;
    }
    char *end;
    errno = 0;
    double v = strtod(buf, &end);
    int bad = end != buf + n || strlen(s) >= sizeof buf || !isfinite(v) ||
              (errno == ERANGE && fabs(v) > 1.0);
    if (bad) {
        errbuf_set(err, errlen, "%s:%d: column '%.64s': '%.40s' is not a finite number", csv->name,
                   csv->lines[row], csv->names[col], s);
        return -EINVAL;
    }
    *out = v;
    return 0;
}

int csv_get_long(const csv_t *csv, int row, int col, long *out, char *err, size_t errlen)
{
    const char *s = csv_get(csv, row, col);
    if (!s) {
        errbuf_set(err, errlen, "%s: no cell at row %d, column %d", csv->name, row, col);
        return -ERANGE;
    }
    char buf[64];
    size_t n = field_trimmed(s, buf, sizeof buf);
    char *end;
    errno = 0;
    long v = strtol(buf, &end, 10);
    if (n == 0 || end != buf + n || strlen(s) >= sizeof buf || errno == ERANGE) {
        errbuf_set(err, errlen, "%s:%d: column '%.64s': '%.40s' is not an integer", csv->name,
                   csv->lines[row], csv->names[col], s);
        return -EINVAL;
    }
    *out = v;
    return 0;
}

typedef struct keyctx {
    const csv_t *csv;
    int col;
} keyctx_t;

static int key_cmp(const void *x, const void *y, void *arg)
{
    const keyctx_t *k = arg;
    int a = *(const int *)x, b = *(const int *)y;
    int c = strcmp(csv_get(k->csv, a, k->col), csv_get(k->csv, b, k->col));
    /* Ties by row so the first occurrence comes first: duplicates are then reported in file
     * order. */
    return c ? c : (a > b) - (a < b);
}

/* Returns a malloc'd array of the row indices of `csv` sorted by key, or NULL with *rc set;
 * rejects duplicate keys. */
static int *sorted_keys(const csv_t *csv, int col, int *rc, char *err, size_t errlen)
{
    int n = csv->nrows;
    int *idx = malloc(((size_t)n + 1) * sizeof *idx);
    if (!idx) {
        *rc = -ENOMEM;
        errbuf_set(err, errlen, "%s: out of memory", csv->name);
        return NULL;
    }
    for (int i = 0; i < n; i++)
        idx[i] = i;
    keyctx_t k = {csv, col};
    qsort_r(idx, (size_t)n, sizeof *idx, key_cmp, &k);
    for (int i = 1; i < n; i++) {
        const char *p = csv_get(csv, idx[i - 1], col), *q = csv_get(csv, idx[i], col);
        if (strcmp(p, q) == 0) {
            errbuf_set(err, errlen,
                       "%s:%d: duplicate key '%.64s' in column '%.64s' (first on line %d)",
                       csv->name, csv->lines[idx[i]], q, csv->names[col], csv->lines[idx[i - 1]]);
            free(idx);
            *rc = -EINVAL;
            return NULL;
        }
    }
    return idx;
}

/* Binary search of `key` among b's rows sorted by key; returns the row or -1. */
static int find_key(const csv_t *b, int col, const int *sorted, const char *key)
{
    int lo = 0, hi = b->nrows - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(csv_get(b, sorted[mid], col), key);
        if (c == 0)
            return sorted[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

int csv_join(const csv_t *a,
             int key_a,
             const csv_t *b,
             int key_b,
             int flags,
             int **ret_b_rows,
             char *err,
             size_t errlen)
{
    if (key_a < 0 || key_a >= a->ncols || key_b < 0 || key_b >= b->ncols) {
        errbuf_set(err, errlen, "csv_join: key column out of range");
        return -ERANGE;
    }
    int rc = 0;
    int *sa = NULL, *sb = NULL, *map = NULL;
    unsigned char *used = NULL;
    sa = sorted_keys(a, key_a, &rc, err, errlen);
    if (!sa)
        goto out;
    sb = sorted_keys(b, key_b, &rc, err, errlen);
    if (!sb)
        goto out;
    map = malloc(((size_t)a->nrows + 1) * sizeof *map);
    used = calloc((size_t)b->nrows + 1, 1);
    if (!map || !used) {
        rc = -ENOMEM;
        errbuf_set(err, errlen, "%s: out of memory", a->name);
        goto out;
    }
    for (int i = 0; i < a->nrows; i++) {
        const char *key = csv_get(a, i, key_a);
        int j = find_key(b, key_b, sb, key);
        if (j < 0) {
            errbuf_set(err, errlen, "%s:%d: key '%.64s' (column '%.64s') has no match in %s",
                       a->name, a->lines[i], key, a->names[key_a], b->name);
            rc = -EINVAL;
            goto out;
        }
        map[i] = j;
        used[j] = 1;
    }
    if (!(flags & CSV_JOIN_ALLOW_EXTRA_B)) {
        for (int j = 0; j < b->nrows; j++) {
            if (!used[j]) {
                errbuf_set(err, errlen, "%s:%d: key '%.64s' (column '%.64s') has no match in %s",
                           b->name, b->lines[j], csv_get(b, j, key_b), b->names[key_b], a->name);
                rc = -EINVAL;
                goto out;
            }
        }
    }
    *ret_b_rows = map;
    map = NULL;
out:
    free(sa);
    free(sb);
    free(map);
    free(used);
    return rc;
}

int csv_write_field(FILE *f, const char *field)
{
    if (!field)
        field = "";
    size_t n = strlen(field);
    int quote = n > 0 && (field[0] == ' ' || field[0] == '\t' || field[n - 1] == ' ' ||
                          field[n - 1] == '\t');
    if (strpbrk(field, ",\"\r\n"))
        quote = 1;
    if (!quote) {
        fputs(field, f);
    } else {
        fputc('"', f);
        for (const char *p = field; *p; p++) {
            if (*p == '"')
                fputc('"', f);
            fputc(*p, f);
        }
        fputc('"', f);
    }
    return ferror(f) ? -EIO : 0;
}

int csv_write_row(FILE *f, const char *const *fields, int n)
{
    for (int i = 0; i < n; i++) {
        if (i > 0)
            fputc(',', f);
        csv_write_field(f, fields[i]);
    }
    fputc('\n', f);
    return ferror(f) ? -EIO : 0;
}

/* fitdata: mixtures joined with losses into (X, y) for a fit (fitdata.h). */
#include "fitdata.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"
#include "errbuf.h"
#include "objective.h"

void fitdata_destroy(fitdata_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    fitdata_t *fd = *self_p;
    if (fd->domains)
        for (size_t j = 0; j < fd->d; j++)
            free(fd->domains[j]);
    free(fd->domains);
    free(fd->X);
    free(fd->y);
    free(fd->target);
    free(fd->losses);
    free(fd);
    *self_p = NULL;
}

int fitdata_load(const char *mixtures,
                 const char *losses,
                 const char *key,
                 const char *target,
                 const char *const *domains,
                 size_t d,
                 fitdata_t **ret,
                 char *err,
                 size_t errlen)
{
    if (!key)
        key = "index";
    csv_t *mc = NULL, *lc = NULL;
    fitdata_t *fd = NULL;
    objective_t *obj = NULL;
    int *brow = NULL, *mcol = NULL, *lcol = NULL;
    const char **lnames = NULL;
    double *lrow = NULL;
    int rc = csv_read_file(mixtures, &mc, err, errlen);
    if (rc == 0)
        rc = csv_read_file(losses, &lc, err, errlen);
    if (rc != 0)
        goto out;
    rc = -EINVAL;
    int mkey = csv_col(mc, key), lkey = csv_col(lc, key);
    if (mkey < 0 || lkey < 0) {
        errbuf_set(err, errlen, "%s:1: no join column '%s'", mkey < 0 ? mixtures : losses, key);
        goto out;
    }
    int mcols = csv_ncols(mc), lcols = csv_ncols(lc);
    if (csv_nrows(mc) < 1) {
        errbuf_set(err, errlen, "%s:1: no runs", mixtures);
        goto out;
    }
    if (!domains)
        d = (size_t)(mcols - 1);
    if (d < 1 || (size_t)(mcols - 1) != d) {
        errbuf_set(err, errlen, "%s:1: %d mixture columns, expected %zu", mixtures, mcols - 1, d);
        goto out;
    }
    rc = -ENOMEM;
    fd = calloc(1, sizeof *fd);
    mcol = calloc(d, sizeof *mcol);
    lcol = calloc((size_t)lcols, sizeof *lcol);
    lnames = calloc((size_t)lcols, sizeof *lnames);
    lrow = calloc((size_t)lcols, sizeof *lrow);
    if (!fd || !mcol || !lcol || !lnames || !lrow)
        goto out;
    fd->n = (size_t)csv_nrows(mc);
    fd->d = d;
    fd->domains = calloc(d, sizeof *fd->domains);
    fd->X = malloc(fd->n * d * sizeof *fd->X);
    fd->y = malloc(fd->n * sizeof *fd->y);
    if (!fd->domains || !fd->X || !fd->y)
        goto out;
    for (size_t j = 0, c = 0; j < d; j++, c++) {
        if (domains) {
            mcol[j] = csv_col(mc, domains[j]);
            if (mcol[j] < 0 || mcol[j] == mkey) {
                errbuf_set(err, errlen, "%s:1: no mixture column '%s'", mixtures, domains[j]);
                rc = -EINVAL;
                goto out;
            }
        } else {
            if ((int)c == mkey)
                c++;
            mcol[j] = (int)c;
        }
        if (!(fd->domains[j] = strdup(csv_col_name(mc, mcol[j]))))
            goto out;
    }
    int nl = 0;
    for (int c = 0; c < lcols; c++)
        if (c != lkey) {
            lcol[nl] = c;
            lnames[nl++] = csv_col_name(lc, c);
        }
    rc = objective_parse(target, lnames, nl, &obj, err, errlen);
    if (rc != 0) {
        /* name the file whose header lacks the column */
        char msg[512];
        snprintf(msg, sizeof msg, "%s:1: %s", losses, err ? err : "bad target");
        errbuf_set(err, errlen, "%s", msg);
        goto out;
    }
    if (!(fd->target = strdup(objective_text(obj)))) {
        rc = -ENOMEM;
        goto out;
    }
    rc = csv_join(mc, mkey, lc, lkey, CSV_JOIN_ALLOW_EXTRA_B, &brow, err, errlen);
    if (rc != 0)
        goto out;
    for (size_t i = 0; i < fd->n; i++) {
        double *x = fd->X + i * d, sum = 0;
        for (size_t j = 0; j < d; j++) {
            rc = csv_get_double(mc, (int)i, mcol[j], &x[j], err, errlen);
            if (rc != 0)
                goto out;
            if (x[j] < 0) {
                errbuf_set(err, errlen, "%s:%d: column '%s': negative weight %g", mixtures,
                           csv_line(mc, (int)i), fd->domains[j], x[j]);
                rc = -EINVAL;
                goto out;
            }
            sum += x[j];
        }
        if (!(sum > 0)) {
            errbuf_set(err, errlen, "%s:%d: the weights sum to 0", mixtures, csv_line(mc, (int)i));
            rc = -EINVAL;
            goto out;
        }
        for (size_t j = 0; j < d; j++)
            x[j] /= sum;
        for (int c = 0; c < nl; c++) {
            lrow[c] = 0;
            if (objective_uses(obj, c)) {
                rc = csv_get_double(lc, brow[i], lcol[c], &lrow[c], err, errlen);
                if (rc != 0)
                    goto out;
            }
        }
        fd->y[i] = objective_eval(obj, lrow);
    }
    *ret = fd;
    fd = NULL;
    rc = 0;
out:
    fitdata_destroy(&fd);
    objective_destroy(&obj);
    csv_destroy(&mc);
    csv_destroy(&lc);
    free(brow);
    free(mcol);
    free(lcol);
    free(lnames);
    free(lrow);
    return rc;
}

int fitdata_load_prior(const char *path,
                       const char *const *domains,
                       size_t d,
                       double *ret_alpha,
                       char *err,
                       size_t errlen)
{
    csv_t *pc = NULL;
    int rc = csv_read_file(path, &pc, err, errlen);
    if (rc != 0)
        return rc;
    double *a = calloc(d ? d : 1, sizeof *a);
    unsigned char *seen = calloc(d ? d : 1, 1);
    rc = -ENOMEM;
    if (!a || !seen)
        goto out;
    rc = -EINVAL;
    int dc = csv_col(pc, "domain"), wc = csv_col(pc, "weight");
    if (dc < 0 || wc < 0) {
        errbuf_set(err, errlen, "%s:1: the header must have columns 'domain' and 'weight'", path);
        goto out;
    }
    for (int r = 0; r < csv_nrows(pc); r++) {
        const char *name = csv_get(pc, r, dc);
        size_t j = 0;
        while (j < d && strcmp(domains[j], name) != 0)
            j++;
        if (j == d) {
            errbuf_set(err, errlen, "%s:%d: domain '%s' is not a mixture column", path,
                       csv_line(pc, r), name);
            goto out;
        }
        if (seen[j]) {
            errbuf_set(err, errlen, "%s:%d: domain '%s' given twice", path, csv_line(pc, r), name);
            goto out;
        }
        seen[j] = 1;
        if ((rc = csv_get_double(pc, r, wc, &a[j], err, errlen)) != 0)
            goto out;
        rc = -EINVAL;
        if (!(a[j] > 0)) {
            errbuf_set(err, errlen, "%s:%d: weight of '%s' must be positive", path, csv_line(pc, r),
                       name);
            goto out;
        }
    }
    for (size_t j = 0; j < d; j++)
        if (!seen[j]) {
            errbuf_set(err, errlen, "%s:%d: no weight for domain '%s'", path, csv_nrows(pc) + 2,
                       domains[j]);
            goto out;
        }
    memcpy(ret_alpha, a, d * sizeof *a);
    rc = 0;
out:
    free(a);
    free(seen);
    csv_destroy(&pc);
    return rc;
}

int fitdata_load_results(const char *path,
                         const char *const *domains,
                         size_t d,
                         const char *const *loss_names,
                         int m,
                         fitdata_t **ret,
                         char *err,
                         size_t errlen)
{
    static const char *const lead[] = {"run", "attempt", "worker"};
    csv_t *c = NULL;
    fitdata_t *fd = NULL;
    int *lcol = NULL;
    int rc = csv_read_file(path, &c, err, errlen);
    if (rc < 0)
        return rc;
    const int ncols = csv_ncols(c), nlead = 3;
    if (ncols < nlead + (int)d) {
        errbuf_set(err, errlen,
                   "%s:1: %d columns, a results file has run,attempt,worker and the "
                   "%zu domains",
                   path, ncols, d);
        rc = -EINVAL;
        goto fail;
    }
    for (int j = 0; j < nlead + (int)d; j++) {
        const char *want = j < nlead ? lead[j] : domains[j - nlead];
        if (strcmp(csv_col_name(c, j), want) != 0) {
            errbuf_set(err, errlen, "%s:1: column %d is '%s', expected '%s'", path, j + 1,
                       csv_col_name(c, j), want);
            rc = -EINVAL;
            goto fail;
        }
    }
    size_t n = (size_t)csv_nrows(c);
    fd = calloc(1, sizeof *fd);
    lcol = calloc(m > 0 ? (size_t)m : 1, sizeof *lcol);
    if (!fd || !lcol) {
        rc = -ENOMEM;
        goto fail;
    }
    fd->n = n;
    fd->d = d;
    fd->m = m;
    fd->domains = calloc(d, sizeof *fd->domains);
    fd->X = malloc((n ? n : 1) * d * sizeof *fd->X);
    fd->losses = malloc((n ? n : 1) * (m > 0 ? (size_t)m : 1) * sizeof *fd->losses);
    if (!fd->domains || !fd->X || !fd->losses) {
        rc = -ENOMEM;
        goto fail;
    }
    for (size_t j = 0; j < d; j++)
        if (!(fd->domains[j] = strdup(domains[j]))) {
            rc = -ENOMEM;
            goto fail;
        }
    for (int k = 0; k < m; k++) {
        lcol[k] = -1;
        for (int j = nlead + (int)d; j < ncols && lcol[k] < 0; j++)
            if (strncmp(csv_col_name(c, j), "loss:", 5) == 0 &&
                strcmp(csv_col_name(c, j) + 5, loss_names[k]) == 0)
                lcol[k] = j;
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < d; j++) {
            double *x = &fd->X[i * d + j];
            rc = csv_get_double(c, (int)i, nlead + (int)j, x, err, errlen);
            if (rc == 0 && !(*x >= 0)) {
                errbuf_set(err, errlen, "%s:%d: weight of '%s' is negative", path,
                           csv_line(c, (int)i), domains[j]);
                rc = -EINVAL;
            }
            if (rc < 0)
                goto fail;
        }
        for (int k = 0; k < m; k++) {
            double *l = &fd->losses[i * (size_t)m + (size_t)k];
            *l = NAN;
            if (lcol[k] < 0 || !*csv_get(c, (int)i, lcol[k]))
                continue;
            rc = csv_get_double(c, (int)i, lcol[k], l, err, errlen);
            if (rc < 0)
                goto fail;
        }
    }
    free(lcol);
    csv_destroy(&c);
    *ret = fd;
    return 0;
fail:
    free(lcol);
    fitdata_destroy(&fd);
    csv_destroy(&c);
    return rc;
}

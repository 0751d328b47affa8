/* objective: weighted sums of loss columns as the regression target (objective.h). */
#include "objective.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errbuf.h"

struct objective {
    int ncols;
    double *w; /* (ncols) */
    char *text;
};

void objective_destroy(objective_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->w);
    free((*self_p)->text);
    free(*self_p);
    *self_p = NULL;
}

static objective_t *objective__new(int ncols)
{
    objective_t *o = calloc(1, sizeof *o);
    if (!o)
        return NULL;
    o->ncols = ncols;
    o->w = calloc((size_t)(ncols > 0 ? ncols : 1), sizeof *o->w);
    if (!o->w) {
        free(o);
        return NULL;
    }
    return o;
}

/* Builds the canonical text; NULL on allocation failure. */
static char *objective__text(const objective_t *o, const char *const *names)
{
    size_t cap = 1, len = 0, used = 0;
    int one = -1;
    for (int j = 0; j < o->ncols; j++)
        if (o->w[j] != 0) {
            cap += strlen(names[j]) + 32;
            used++;
            one = j;
        }
    if (used == 1 && o->w[one] == 1.0)
        return strdup(names[one]);
    char *s = malloc(cap);
    if (!s)
        return NULL;
    s[0] = 0;
    for (int j = 0; j < o->ncols; j++)
        if (o->w[j] != 0)
            len += (size_t)snprintf(s + len, cap - len, "%s%s=%.17g", len ? "," : "", names[j],
                                    o->w[j]);
    return s;
}

int objective_from_terms(const char *const *term_names,
                         const double *term_weights,
                         int nterms,
                         const char *const *names,
                         int ncols,
                         objective_t **ret,
                         char *err,
                         size_t errlen)
{
    if (nterms < 1) {
        errbuf_set(err, errlen, "target: no terms");
        return -EINVAL;
    }
    objective_t *o = objective__new(ncols);
    if (!o)
        return -ENOMEM;
    unsigned char *seen = calloc((size_t)(ncols > 0 ? ncols : 1), 1);
    if (!seen) {
        objective_destroy(&o);
        return -ENOMEM;
    }
    int rc = 0;
    for (int t = 0; t < nterms && rc == 0; t++) {
        int col = -1;
        for (int j = 0; j < ncols; j++)
            if (strcmp(names[j], term_names[t]) == 0)
                col = j;
        if (col < 0) {
            errbuf_set(err, errlen, "target: no loss column named '%s'", term_names[t]);
            rc = -EINVAL;
        } else if (seen[col]) {
            errbuf_set(err, errlen, "target: column '%s' given twice", term_names[t]);
            rc = -EINVAL;
        } else if (!isfinite(term_weights[t])) {
            errbuf_set(err, errlen, "target: weight of '%s' is not finite", term_names[t]);
            rc = -EINVAL;
        } else {
            seen[col] = 1;
            o->w[col] = term_weights[t];
        }
    }
    free(seen);
    if (rc == 0 && !(o->text = objective__text(o, names)))
        rc = -ENOMEM;
    if (rc != 0) {
        objective_destroy(&o);
        return rc;
    }
    *ret = o;
    return 0;
}

int objective_parse(const char *spec,
                    const char *const *names,
                    int ncols,
                    objective_t **ret,
                    char *err,
                    size_t errlen)
{
    if (!spec || !*spec) {
        errbuf_set(err, errlen, "target: empty");
        return -EINVAL;
    }
    for (int j = 0; j < ncols; j++)
        if (strcmp(spec, names[j]) == 0) {
            double one = 1.0;
            return objective_from_terms(&spec, &one, 1, names, ncols, ret, err, errlen);
        }
    if (strcmp(spec, "mean") == 0) {
        if (ncols < 1) {
            errbuf_set(err, errlen, "target: 'mean' of no loss columns");
            return -EINVAL;
        }
        objective_t *o = objective__new(ncols);
        if (!o || !(o->text = strdup("mean"))) {
            objective_destroy(&o);
            return -ENOMEM;
        }
        for (int j = 0; j < ncols; j++)
            o->w[j] = 1.0 / ncols;
        *ret = o;
        return 0;
    }
    if (!strchr(spec, '=')) {
        errbuf_set(err, errlen, "target: no loss column named '%s'", spec);
        return -EINVAL;
    }
    /* name=w,name=w */
    char *copy = strdup(spec);
    size_t cap = 1;
    for (const char *c = spec; *c; c++)
        cap += *c == ',';
    const char **tn = calloc(cap, sizeof *tn);
    double *tw = calloc(cap, sizeof *tw);
    int rc = -ENOMEM, nt = 0;
    if (!copy || !tn || !tw)
        goto out;
    rc = 0;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok && rc == 0; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strrchr(tok, '=');
        char *end = NULL;
        if (eq) {
            *eq = 0;
            errno = 0;
            tw[nt] = strtod(eq + 1, &end);
        }
        if (!eq || eq == tok || end == eq + 1 || *end || errno) {
            errbuf_set(err, errlen, "target: '%s' is not name=weight", tok);
            rc = -EINVAL;
            break;
        }
        tn[nt++] = tok;
    }
    if (rc == 0)
        rc = objective_from_terms(tn, tw, nt, names, ncols, ret, err, errlen);
out:
    free(copy);
    free(tn);
    free(tw);
    return rc;
}

double objective_eval(const objective_t *o, const double *losses)
{
    double s = 0;
    for (int j = 0; j < o->ncols; j++)
        if (o->w[j] != 0)
            s += o->w[j] * losses[j];
    return s;
}

double objective_weight(const objective_t *o, int col)
{
    return col >= 0 && col < o->ncols ? o->w[col] : 0;
}

int objective_uses(const objective_t *o, int col)
{
    return objective_weight(o, col) != 0;
}

const char *objective_text(const objective_t *o)
{
    return o->text;
}

/*
 * attempt: the coordinator's live attempts (leased or running) in memory, a hash table by attempt
 * id with intrusive chaining (docs/protocol.md, jobs, attempts and fencing). An attempt also sits
 * on one list: its worker's (worker.attempts) or, after a coordinator restart and until its worker
 * says HELLO, the orphans list. The table does not own the attempts; coord_attempt_drop() frees
 * them.
 */
#ifndef REGMIX_COORD_ATTEMPT_H
#define REGMIX_COORD_ATTEMPT_H

#include <stdint.h>

struct sweep;
struct worker;

typedef struct attempt {
    int64_t id;
    int64_t run;
    struct sweep *sweep;
    struct worker *worker; /* NULL while an orphan */
    char worker_id[129];   /* who holds it (for orphans: who held it before the restart) */
    int run_idx;
    int attempt_no;
    int running;       /* STARTED seen */
    int reported;      /* listed in a PING as running (synthetic jobs skip STARTED) */
    uint64_t gpu_mask; /* bits into worker.gpu_index */
    int64_t leased_mono;
    int64_t last_progress_mono;
    struct attempt *hnext; /* hash chain */
    struct attempt *lprev; /* worker or orphan list */
    struct attempt *lnext;
} attempt_t;

typedef struct attempt_table attempt_table_t;

int attempt_table_new(attempt_table_t **ret);
/* Frees the table and every attempt still in it; NULL is a harmless no-op. */
void attempt_table_destroy(attempt_table_t **t_p);
attempt_t *attempt_table_get(const attempt_table_t *t, int64_t id);
/* Inserts `a` (its id must not be present). Returns 0 or -ENOMEM. */
int attempt_table_put(attempt_table_t *t, attempt_t *a);
/* Removes `a` from the table (not from its list); does not free. */
void attempt_table_remove(attempt_table_t *t, attempt_t *a);
int attempt_table_count(const attempt_table_t *t);
/* Collects up to `max` attempts into out (for iteration that may remove); returns how many. */
int attempt_table_collect(const attempt_table_t *t, attempt_t **out, int max);

/* Intrusive list helpers on lprev/lnext; *head is the list head. */
void attempt_list_push(attempt_t **head, attempt_t *a);
void attempt_list_remove(attempt_t **head, attempt_t *a);

#endif

/*
 * data: the trainer's token shards per domain, the mixture sampler and the fixed validation set.
 *
 * A domain has a name, training shards, validation shards and a mixture weight. Shards are
 * memory-mapped read-only: llm.c's format (256 int32 header: magic 20240520, version 1, token
 * count; then uint16 tokens) or, for specs written NAME=raw:GLOB, raw uint16 arrays (nanoGPT).
 * Every shard is checked when added (magic, size, every token < vocab).
 *
 * Sampling is stateless: training sequence g (global index over the whole run) is drawn from the
 * stream seqrng(seed, g): its domain by the normalised weights (a domain of weight 0 is never
 * drawn), then a uniform start among all windows of context+1 tokens in that domain's shards.
 * So data order is a function of (seed, g) only: ranks, micro-batching and resumes all see the
 * same sequences. Validation uses the first non-overlapping windows of each domain's validation
 * shards, the same in every run.
 */
#ifndef REGMIX_TRAIN_DATA_H
#define REGMIX_TRAIN_DATA_H

#include <stddef.h>
#include <stdint.h>

typedef struct data data_t;

/* Creates an empty set of domains for the given vocabulary size (tokens must be < vocab). */
int data_new(int vocab, data_t **ret);

/* Frees the set and unmaps every shard; accepts NULL and nulls the caller's pointer. */
void data_destroy(data_t **self_p);

/* Adds the shards of spec "NAME=GLOB" or "NAME=raw:GLOB" to domain NAME (created on first use)
 * as training (valid = 0) or validation shards. Returns 0, -ENOENT (glob matches nothing),
 * -EINVAL (bad shard: wrong magic, truncated, token >= vocab; bad spec) or -ENOMEM, with a message
 * naming the file in err. */
int data_add(data_t *d, const char *spec, int valid, char *err, size_t errlen);

/* Sets mixture weights from "NAME=W,NAME=W,..."; domains not named get 0. Returns -EINVAL with a
 * message for unknown domains, negative or non-numeric weights, or an all-zero mixture. */
int data_set_weights(data_t *d, const char *spec, char *err, size_t errlen);

/* Same, from a JSON object {"NAME": W, ...}. */
int data_set_weights_json(data_t *d, const char *json, char *err, size_t errlen);

/* Checks the set for a context length: a domain with weight > 0 needs a training window of
 * context+1 tokens; weights default to each domain's share of training tokens when never set.
 * Normalises the weights. Returns 0 or -EINVAL with a message. */
int data_prepare(data_t *d, int context, char *err, size_t errlen);

int data_domain_count(const data_t *d);
const char *data_domain_name(const data_t *d, int i);
double data_domain_weight(const data_t *d, int i);

/* Writes training sequence g (context+1 tokens) of the run seeded by seed into out. */
void data_sample(const data_t *d, uint64_t seed, uint64_t g, int32_t *out);

/* Number of validation sequences of domain i available, at most max. */
int data_valid_count(const data_t *d, int i, int max);

/* Writes validation sequence k (< data_valid_count) of domain i (context+1 tokens) into out. */
void data_valid_sequence(const data_t *d, int i, int k, int32_t *out);

#endif

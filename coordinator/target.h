/*
 * target: the coordinator's side of the target launch (launcher.h, DESIGN.md §7).
 *
 * target_launch() launches the sweep's target run on its last fit's proposal (and, with
 * `baseline: prior`, a baseline on the token prior) through the spec's launcher. Persist before
 * act: the `targets` row (state pending) is committed before anything is spawned; then the row
 * follows the process (running with its pid, thinned step/loss, and at exit done with the
 * per-domain losses and the objective, or failed, or submitted for sbatch/kubectl). A role whose
 * row is pending with a plan that cannot run here, running, submitted or done is never launched
 * again, so a coordinator restart does not launch twice; a row still `running` at start belonged
 * to the previous process and is marked failed (a LaunchRequest relaunches it, and the trainer
 * resumes from its checkpoint). Work directories: TARGETS_DIR/SWEEP/ROLE. At shutdown running
 * launches get SIGTERM (the trainer checkpoints) and the loop waits for their exit.
 */
#ifndef REGMIX_COORD_TARGET_H
#define REGMIX_COORD_TARGET_H

#include "coord.h"

/* Loads the targets table at start (running rows become failed). */
int target_load(coord_t *c);

/* Launches what is not launched yet for `sw`. Returns how many launches started (>= 0),
 * -ENOENT when the sweep has no fit, -EALREADY when every role is already launched, or another
 * negative errno (message in err). */
int target_launch(coord_t *c, sweep_t *sw, char *err, size_t errlen);

/* Fills TargetInfo records of `sw` into a reply (malloc'd array of n pointers; free with
 * target_infos_free()). */
int target_infos(coord_t *c, const sweep_t *sw, Regmix__TargetInfo ***ret, size_t *ret_n);
void target_infos_free(Regmix__TargetInfo **infos, size_t n);

/* SIGTERM to running launches (shutdown). */
void target_stop_all(coord_t *c);

#endif

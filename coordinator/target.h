/*
 * target: the coordinator's side of the target launch (launcher.h, docs/architecture.md).
 *
 * target_launch() launches the sweep's target run on its last fit's proposal (and, with
 * `baseline: prior`, a baseline on the token prior) through the spec's launcher. Every launcher
 * has one life cycle (common/states.h): pending -> running -> done | failed | cancelled.
 * Persist before act: the `targets` row (pending) is committed before anything is spawned or
 * submitted. Then:
 *   - mpirun, command: our child, in its own session, its progress in WORKDIR/ROLE.progress;
 *     running at once; its exit says done (a result line), failed (the status) or cancelled;
 *   - slurm: `sbatch --parsable` of the rendered script; pending until Slurm runs it, followed
 *     with scontrol / sacct, its progress read from WORKDIR/slurm-JOBID.out;
 *   - kubernetes: `kubectl apply -f` of the MPIJob; followed with `kubectl get mpijob -o json`,
 *     its progress from `kubectl logs job/NAME-launcher` (copied to WORKDIR/ROLE-launcher.log).
 * The job's handle (follow.h: pid@start time, Slurm job id, MPIJob namespace/name) is stored in
 * the row, so a restarted coordinator follows the same job (target_load); a row committed but
 * never given a handle fails with that reason. A missing sbatch/kubectl, a refused submit or a
 * job Slurm or Kubernetes lost fails with the reason in `detail` (regmixctl target shows it); a
 * failed or cancelled role can be launched again (the trainer resumes from its checkpoint). A
 * role that is pending, running or done is never launched twice. Work directories:
 * TARGETS_DIR/SWEEP/ROLE. At shutdown our own children get SIGTERM (the trainer checkpoints);
 * Slurm jobs and MPIJobs go on, and the next coordinator follows them.
 */
#ifndef REGMIX_COORD_TARGET_H
#define REGMIX_COORD_TARGET_H

#include "coord.h"

/* Loads the targets table at start; pending and running rows with a handle are followed again. */
int target_load(coord_t *c);

/* Polls the followed targets whose time has come (every cfg.target_poll_ms); from the tick. */
void target_tick(coord_t *c, int64_t mono);

/* Cancels the pending and running targets of `sw` (SIGTERM, scancel, kubectl delete); each ends
 * `cancelled` once its job is gone. Returns how many were asked to stop. */
int target_cancel(coord_t *c, const sweep_t *sw);

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

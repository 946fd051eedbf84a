/*
 * The N3IWF's worker threads (issue 12: one N3IWF for thousands of UEs
 * uses every core, and its event loop never waits). One pool, lanes of
 * threads: IKE_WQ_KMSD makes kmsd calls (ike/kmsq.h; each thread owns
 * its kmsd connection), IKE_WQ_CPU does the public-key work of IKE_SA_INIT
 * and IKE_AUTH (ike/cpuq.h). Each lane has its own FIFO of jobs, bounded
 * by `cap` (queued + in flight + finished not yet taken); finished jobs of
 * every lane come back on ONE list, signalled by ONE eventfd the loop
 * polls (ike_wq_fd(), then ike_wq_done() until NULL).
 *
 * A job is a struct that starts with struct ike_wq_job. The loop hands it
 * over with ike_wq_submit() and gets it back with ike_wq_done(); in
 * between only the lane's run function touches it, so a job carries its
 * inputs by value and its outputs back, never a pointer into the SA
 * table. A lane may have an idle function: a worker with nothing queued
 * calls it (without the lock) until it says there is nothing more to do,
 * then sleeps (the CPU lane stocks DH key pairs so).
 */
#ifndef IKE_WORKQ_H
#define IKE_WORKQ_H

#include <stdbool.h>
#include <stddef.h>

enum ike_wq_lane {
	IKE_WQ_KMSD = 0, /* kmsd calls: ike/kmsq.h */
	IKE_WQ_CPU,	 /* DH, signatures: ike/cpuq.h */
	IKE_WQ_LANES,
};

#define IKE_WQ_MAX_WORKERS 64

struct ike_wq_job {
	unsigned lane; /* set by the submitter */
	int	 kind; /* the submitter's: which job struct this heads */
	void (*free)(struct ike_wq_job *j); /* wipes the job's secrets */
	struct ike_wq_job *next;	    /* the queue's */
};

/* One lane's threads: run(ctx of the worker, job); idle(ctx): true if it
 * did some work (called again), false: sleep until a job comes. */
struct ike_wq_lane_cfg {
	const char *name; /* the threads' (top -H, /proc/PID/task/TID/comm) */
	unsigned    workers; /* 1..IKE_WQ_MAX_WORKERS */
	unsigned    cap;     /* jobs queued, in flight or done, at most */
	void	  **wctx;    /* per worker (NULL: every worker gets ctx) */
	void	   *ctx;     /* the lane's (idle's, and run's without wctx) */
	void (*wctx_free)(void *wctx); /* at close, after the join */
	void (*ctx_free)(void *ctx);   /* at close, after the join */
	void (*run)(void *ctx, struct ike_wq_job *j);
	bool (*idle)(void *ctx); /* NULL: none */
};

struct ike_wq;

/* An empty pool with its eventfd; NULL with a reason in err. */
struct ike_wq	  *ike_wq_new(char *err, size_t errlen);
/*
 * Starts a lane's threads (once per lane). The pool owns cfg->wctx's
 * contexts and cfg->ctx from here on, even on failure. 0, or -1 with a reason in err.
 */
int		   ike_wq_lane(struct ike_wq *q, enum ike_wq_lane lane,
		   const struct ike_wq_lane_cfg *cfg, char *err, size_t errlen);
/* Stops every thread (after its current job), frees every job. NULL ok. */
void		   ike_wq_close(struct ike_wq *q);
/* Readable when finished jobs wait. */
int		   ike_wq_fd(const struct ike_wq *q);
/* The lane has threads. */
bool		   ike_wq_has(const struct ike_wq *q, enum ike_wq_lane lane);
/* The lane holds cap jobs or more (admission: callers refuse new work). */
bool		   ike_wq_full(const struct ike_wq *q, enum ike_wq_lane lane);
/*
 * Queues j on j->lane (the pool owns it until ike_wq_done gives it back).
 * Never refuses: the caller asked ike_wq_full() first where it admits new
 * work; a job of work already admitted may go past cap.
 */
void		   ike_wq_submit(struct ike_wq *q, struct ike_wq_job *j);
/* One finished job (the caller owns it), or NULL. */
struct ike_wq_job *ike_wq_done(struct ike_wq *q);

#endif

/* The N3IWF's worker threads: lanes of bounded FIFOs, one eventfd back. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/eventfd.h>
#include <unistd.h>

#include "common/log.h"
#include "ike/workq.h"

struct wq_list {
	struct ike_wq_job *head, *tail;
};

struct wq_lane {
	struct ike_wq_lane_cfg cfg;
	void		      *wctx[IKE_WQ_MAX_WORKERS];
	struct wq_list	       todo;
	unsigned	       count; /* queued + in flight + done */
	unsigned	       nthreads;
	pthread_t	       tid[IKE_WQ_MAX_WORKERS];
	pthread_cond_t	       cv;
};

struct ike_wq {
	pthread_mutex_t mu;
	struct wq_list	done;
	int		stop;
	int		efd;
	struct wq_lane	lane[IKE_WQ_LANES];
};

struct wq_arg {
	struct ike_wq  *q;
	struct wq_lane *l;
	void	       *ctx;
};

static void
list_push(struct wq_list *l, struct ike_wq_job *j)
{
	j->next = NULL;
	if (l->tail != NULL)
		l->tail->next = j;
	else
		l->head = j;
	l->tail = j;
}

static struct ike_wq_job *
list_pop(struct wq_list *l)
{
	struct ike_wq_job *j = l->head;

	if (j != NULL && (l->head = j->next) == NULL)
		l->tail = NULL;
	return j;
}

static void
list_free(struct wq_list *l)
{
	struct ike_wq_job *j;

	while ((j = list_pop(l)) != NULL)
		j->free(j);
}

/* Sleeps until a job or stop; runs the lane's idle work first. */
static struct ike_wq_job *
wq_next(struct ike_wq *q, struct wq_lane *l)
{
	bool busy = true;

	while (!q->stop && l->todo.head == NULL) {
		if (busy && l->cfg.idle != NULL) {
			pthread_mutex_unlock(&q->mu);
			busy = l->cfg.idle(l->cfg.ctx);
			pthread_mutex_lock(&q->mu);
			continue;
		}
		pthread_cond_wait(&l->cv, &q->mu);
		busy = true; /* a job was taken: the idle work may have grown */
	}
	return q->stop ? NULL : list_pop(&l->todo);
}

static void *
wq_worker(void *arg)
{
	struct wq_arg	   a = *(struct wq_arg *)arg;
	struct ike_wq_job *j;
	uint64_t	   one = 1;

	free(arg);
	pthread_mutex_lock(&a.q->mu);
	while ((j = wq_next(a.q, a.l)) != NULL) {
		pthread_mutex_unlock(&a.q->mu);
		a.l->cfg.run(a.ctx, j);
		pthread_mutex_lock(&a.q->mu);
		list_push(&a.q->done, j);
		/* EAGAIN: the counter is huge, the loop is awake anyway. */
		if (write(a.q->efd, &one, sizeof(one)) == -1 && errno != EAGAIN)
			log_warn("%s: eventfd: %s", __func__, strerror(errno));
	}
	pthread_mutex_unlock(&a.q->mu);
	return NULL;
}

/* Workers block every signal: SIGTERM/SIGUSR1 must wake the loop's poll(). */
static int
wq_spawn(pthread_t *t, struct wq_arg *a)
{
	sigset_t all, old;
	int	 r;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(t, NULL, wq_worker, a);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return r;
}

struct ike_wq *
ike_wq_new(char *err, size_t errlen)
{
	struct ike_wq *q;

	if ((q = calloc(1, sizeof(*q))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&q->mu, NULL);
	for (int i = 0; i < IKE_WQ_LANES; i++)
		pthread_cond_init(&q->lane[i].cv, NULL);
	if ((q->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		ike_wq_close(q);
		return NULL;
	}
	return q;
}

int
ike_wq_lane(struct ike_wq *q, enum ike_wq_lane lane,
    const struct ike_wq_lane_cfg *cfg, char *err, size_t errlen)
{
	struct wq_lane *l = &q->lane[lane];
	struct wq_arg  *a;

	if (cfg->workers < 1 || cfg->workers > IKE_WQ_MAX_WORKERS ||
	    cfg->cap < 1 || l->nthreads > 0) {
		snprintf(err, errlen, "worker threads %u (1..%d), queue %u",
		    cfg->workers, IKE_WQ_MAX_WORKERS, cfg->cap);
		for (unsigned i = 0;
		     cfg->wctx != NULL && cfg->wctx_free != NULL &&
		     i < cfg->workers && i < IKE_WQ_MAX_WORKERS;
		     i++)
			cfg->wctx_free(cfg->wctx[i]);
		if (cfg->ctx_free != NULL)
			cfg->ctx_free(cfg->ctx);
		return -1;
	}
	l->cfg = *cfg;
	if (cfg->wctx != NULL) {
		memcpy(l->wctx, cfg->wctx, cfg->workers * sizeof(void *));
		l->cfg.wctx = l->wctx;
	}
	for (unsigned i = 0; i < cfg->workers; i++) {
		if ((a = malloc(sizeof(*a))) == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		a->q = q;
		a->l = l;
		a->ctx = cfg->wctx != NULL ? cfg->wctx[i] : cfg->ctx;
		if (wq_spawn(&l->tid[i], a) != 0) {
			free(a);
			snprintf(err, errlen, "cannot start a worker thread");
			return -1;
		}
		if (cfg->name != NULL)
			(void)pthread_setname_np(l->tid[i], cfg->name);
		l->nthreads++;
	}
	return 0;
}

void
ike_wq_close(struct ike_wq *q)
{
	if (q == NULL)
		return;
	pthread_mutex_lock(&q->mu);
	q->stop = 1;
	for (int i = 0; i < IKE_WQ_LANES; i++)
		pthread_cond_broadcast(&q->lane[i].cv);
	pthread_mutex_unlock(&q->mu);
	for (int i = 0; i < IKE_WQ_LANES; i++) {
		struct wq_lane *l = &q->lane[i];

		for (unsigned t = 0; t < l->nthreads; t++)
			pthread_join(l->tid[t], NULL);
		for (unsigned t = 0; l->cfg.wctx != NULL && t < l->cfg.workers;
		     t++)
			if (l->cfg.wctx_free != NULL)
				l->cfg.wctx_free(l->cfg.wctx[t]);
		if (l->cfg.ctx_free != NULL)
			l->cfg.ctx_free(l->cfg.ctx);
		list_free(&l->todo);
		pthread_cond_destroy(&l->cv);
	}
	list_free(&q->done);
	if (q->efd != -1)
		close(q->efd);
	pthread_mutex_destroy(&q->mu);
	free(q);
}

int
ike_wq_fd(const struct ike_wq *q)
{
	return q->efd;
}

bool
ike_wq_has(const struct ike_wq *q, enum ike_wq_lane lane)
{
	return q != NULL && q->lane[lane].nthreads > 0;
}

bool
ike_wq_full(const struct ike_wq *q, enum ike_wq_lane lane)
{
	/* only the event loop changes count */
	return q->lane[lane].count >= q->lane[lane].cfg.cap;
}

void
ike_wq_submit(struct ike_wq *q, struct ike_wq_job *j)
{
	struct wq_lane *l = &q->lane[j->lane];

	pthread_mutex_lock(&q->mu);
	l->count++;
	list_push(&l->todo, j);
	pthread_cond_signal(&l->cv);
	pthread_mutex_unlock(&q->mu);
}

struct ike_wq_job *
ike_wq_done(struct ike_wq *q)
{
	struct ike_wq_job *j;
	uint64_t	   v;

	pthread_mutex_lock(&q->mu);
	if ((j = list_pop(&q->done)) != NULL)
		q->lane[j->lane].count--;
	else /* all taken: reset the counter so poll sleeps again */
		(void)!read(q->efd, &v, sizeof(v));
	pthread_mutex_unlock(&q->mu);
	return j;
}

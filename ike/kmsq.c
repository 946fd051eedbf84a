/* Asynchronous kmsd calls for the N3IWF: bounded queue, worker threads, eventfd. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/eventfd.h>
#include <unistd.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "ike/kmsq.h"

#define KMSQ_MAX_WORKERS 64

struct kmsq_list {
	struct ike_kmsq_job *head, *tail;
};

struct ike_kmsq {
	pthread_mutex_t	 mu;
	pthread_cond_t	 cv;
	struct kmsq_list todo, done;
	unsigned	 cap, count; /* count: queued + in flight + done */
	int		 stop;
	int		 efd;
	unsigned	 nworkers;
	pthread_t	 tid[KMSQ_MAX_WORKERS];
	struct ike_qkd	*qkd[KMSQ_MAX_WORKERS];
};

struct kmsq_arg {
	struct ike_kmsq *q;
	struct ike_qkd	*qkd;
};

static void
list_push(struct kmsq_list *l, struct ike_kmsq_job *j)
{
	j->next = NULL;
	if (l->tail != NULL)
		l->tail->next = j;
	else
		l->head = j;
	l->tail = j;
}

static struct ike_kmsq_job *
list_pop(struct kmsq_list *l)
{
	struct ike_kmsq_job *j = l->head;

	if (j != NULL && (l->head = j->next) == NULL)
		l->tail = NULL;
	return j;
}

struct ike_kmsq_job *
ike_kmsq_job_new(void)
{
	struct ike_kmsq_job *j;

	if ((j = calloc(1, sizeof(*j))) == NULL)
		return NULL;
	if ((j->keys = ike_qkd_keys_new()) == NULL) {
		free(j);
		return NULL;
	}
	return j;
}

void
ike_kmsq_job_free(struct ike_kmsq_job *j)
{
	if (j == NULL)
		return;
	ike_qkd_keys_free(j->keys);
	free(j->req);
	free(j);
}

static void *
kmsq_worker(void *arg)
{
	struct ike_kmsq	    *q = ((struct kmsq_arg *)arg)->q;
	struct ike_qkd	    *qkd = ((struct kmsq_arg *)arg)->qkd;
	struct ike_kmsq_job *j;
	uint64_t	     one = 1, t0;

	free(arg);
	pthread_mutex_lock(&q->mu);
	for (;;) {
		while (!q->stop && q->todo.head == NULL)
			pthread_cond_wait(&q->cv, &q->mu);
		if (q->stop)
			break;
		j = list_pop(&q->todo);
		pthread_mutex_unlock(&q->mu);
		t0 = time_mono_ns();
		j->rc = j->dec ?
		    ike_qkd_dec(qkd, j->sae,
			(const char(*)[ETSI_KEY_ID_MAX + 1]) j->ids, j->n,
			j->keys, j->why) :
		    ike_qkd_enc(qkd, j->sae, j->n, j->keys, j->why);
		j->ns = time_mono_ns() - t0;
		pthread_mutex_lock(&q->mu);
		list_push(&q->done, j);
		/* EAGAIN: the counter is huge, the loop is awake anyway. */
		if (write(q->efd, &one, sizeof(one)) == -1 && errno != EAGAIN)
			log_warn("%s: eventfd: %s", __func__, strerror(errno));
	}
	pthread_mutex_unlock(&q->mu);
	return NULL;
}

/* Workers block every signal: SIGTERM/SIGUSR1 must wake the loop's poll(). */
static int
kmsq_spawn(pthread_t *t, struct kmsq_arg *a)
{
	sigset_t all, old;
	int	 r;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(t, NULL, kmsq_worker, a);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return r;
}

struct ike_kmsq *
ike_kmsq_open(const struct ikecfg *c, unsigned workers, unsigned cap, char *err,
    size_t errlen)
{
	struct ike_kmsq *q;

	if (workers < 1 || workers > KMSQ_MAX_WORKERS || cap < workers) {
		snprintf(err, errlen,
		    "kmsd workers %u (1..%d) and queue %u (>= "
		    "workers)",
		    workers, KMSQ_MAX_WORKERS, cap);
		return NULL;
	}
	if ((q = calloc(1, sizeof(*q))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	q->efd = -1;
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->cv, NULL);
	q->cap = cap;
	if ((q->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		goto fail;
	}
	for (unsigned i = 0; i < workers; i++) {
		struct kmsq_arg *a;

		if ((q->qkd[i] = ike_qkd_open(c, err, errlen)) == NULL)
			goto fail;
		if ((a = malloc(sizeof(*a))) == NULL) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		a->q = q;
		a->qkd = q->qkd[i];
		if (kmsq_spawn(&q->tid[i], a) != 0) {
			free(a);
			snprintf(err, errlen,
			    "cannot start a kmsd worker thread");
			goto fail;
		}
		q->nworkers++;
	}
	return q;
fail:
	ike_kmsq_close(q);
	return NULL;
}

void
ike_kmsq_close(struct ike_kmsq *q)
{
	struct ike_kmsq_job *j;

	if (q == NULL)
		return;
	pthread_mutex_lock(&q->mu);
	q->stop = 1;
	pthread_cond_broadcast(&q->cv);
	pthread_mutex_unlock(&q->mu);
	for (unsigned i = 0; i < q->nworkers; i++)
		pthread_join(q->tid[i], NULL);
	for (unsigned i = 0; i < KMSQ_MAX_WORKERS; i++)
		ike_qkd_close(q->qkd[i]);
	while ((j = list_pop(&q->todo)) != NULL)
		ike_kmsq_job_free(j);
	while ((j = list_pop(&q->done)) != NULL)
		ike_kmsq_job_free(j);
	if (q->efd != -1)
		close(q->efd);
	pthread_cond_destroy(&q->cv);
	pthread_mutex_destroy(&q->mu);
	free(q);
}

int
ike_kmsq_fd(const struct ike_kmsq *q)
{
	return q->efd;
}

bool
ike_kmsq_full(const struct ike_kmsq *q)
{
	return q->count >= q->cap; /* only the event loop changes count */
}

int
ike_kmsq_submit(struct ike_kmsq *q, struct ike_kmsq_job *j)
{
	if (ike_kmsq_full(q))
		return -1;
	pthread_mutex_lock(&q->mu);
	q->count++;
	list_push(&q->todo, j);
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
	return 0;
}

struct ike_kmsq_job *
ike_kmsq_done(struct ike_kmsq *q)
{
	struct ike_kmsq_job *j;
	uint64_t	     v;

	pthread_mutex_lock(&q->mu);
	if ((j = list_pop(&q->done)) != NULL)
		q->count--;
	else /* all taken: reset the counter so poll sleeps again */
		(void)!read(q->efd, &v, sizeof(v));
	pthread_mutex_unlock(&q->mu);
	return j;
}

/*
 * Connection admission for common/httpd.c (internal to httpd*.c): every
 * connection is tracked from accept to close; a newcomer over a limit is
 * admitted by shedding the least useful connection, or refused; a reaper
 * thread enforces the handshake, idle and slow-body deadlines and logs a
 * shedding summary. The policy itself is described in httpd.h above
 * struct httpd_limits.
 */
#ifndef COMMON_HTTPD_ADMIT_H
#define COMMON_HTTPD_ADMIT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "common/etsi.h"
#include "common/httpd.h"

/* Where a connection is; decides what is shed first and its deadline. */
enum httpd_cstate {
	HC_NEW,	 /* TLS handshake or first request headers */
	HC_IDLE, /* between requests (or slowly sending headers) */
	HC_BODY, /* headers in, body arriving */
	HC_BUSY, /* handler running or answer being sent: never shed */
};

/* Per TCP connection: the verified peer identity, read once (httpd.c), and
 * where it stands for the limits (state fields under httpd_admit.mu). */
struct httpd_conn {
	char		   cn[ETSI_ID_MAX + 1];
	bool		   cn_read;
	unsigned	   requests;
	char		   addr[64];	/* "ip:port", for logs */
	struct httpd_conn *prev, *next; /* httpd_admit.conns */
	uint32_t	   ip;		/* IPv4, network order */
	int		   fd;
	enum httpd_cstate  state;
	uint64_t	   since_ns; /* state entered, monotonic */
	bool		   shed;     /* shut down by us, closing */
};

struct httpd_counts {
	unsigned long shed_ip, shed_total, refused, handshake, slow;
};

struct httpd_admit {
	char		    name[32]; /* for logs */
	struct httpd_limits lim;
	pthread_mutex_t	    mu; /* conns, nconns, counts, stop */
	pthread_cond_t	    cv;
	struct httpd_conn  *conns;
	unsigned	    nconns; /* in conns and not shed */
	struct httpd_counts cnt, reported;
	bool		    reserved; /* nconns holds an accepted one */
	bool		    stop;
	bool		    reaper_on;
	pthread_t	    reaper;
};

/*
 * Sets the limits (0 fields take the defaults) and the lock, and returns
 * the connection limit to give MHD; -1 with a message in err when the
 * process cannot hold that many descriptors.
 */
int  httpd_admit_init(struct httpd_admit *a, const struct httpd_limits *lim,
     const char *name, unsigned *mhd_limit, char *err, size_t errlen);
/* Starts the deadline reaper: 0, or -1 with a message in err. */
int  httpd_admit_start(struct httpd_admit *a, char *err, size_t errlen);
/* Stops the reaper, if started; the list and lock stay usable. */
void httpd_admit_stop(struct httpd_admit *a);
/* Frees the lock; after httpd_admit_init, once MHD has stopped. */
void httpd_admit_fini(struct httpd_admit *a);

/* MHD's accept policy callback; cls is the struct httpd_admit. */
enum MHD_Result
httpd_admit_accept(void *cls, const struct sockaddr *sa, socklen_t len);
/* A started connection: tracked, in state HC_NEW; NULL if out of memory. */
struct httpd_conn      *
httpd_admit_conn_new(struct httpd_admit *a, struct MHD_Connection *c);
/* A closed connection leaves the list; the caller frees it. */
void httpd_admit_conn_gone(struct httpd_admit *a, struct httpd_conn *hc);
/* Moves the connection of MHD connection c to state st; NULL if untracked. */
struct httpd_conn *httpd_admit_set_state(struct httpd_admit *a,
    struct MHD_Connection *c, enum httpd_cstate st);

#endif

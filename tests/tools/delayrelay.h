/*
 * delayrelay.h: what the relay's two files share (delayrelay.c: the
 * heap, UDP and TCP relaying and the loop; delayrelay_opt.c: options and
 * rules). One thread: no locking.
 */
#ifndef DELAYRELAY_H
#define DELAYRELAY_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define RLY_MAX_RULES  16
#define RLY_MAX_FLOWS  1024	  /* UDP flows per rule */
#define RLY_CHUNK      65536	  /* bytes per read */
#define RLY_TCP_WINDOW (1u << 20) /* queued bytes per direction */
#define RLY_QUEUE_CAP  (64u << 20)
#define RLY_MAX_DELAY  10000.0 /* ms */

enum rly_ev { EV_LISTEN, EV_FLOW, EV_CONN, EV_TIMER };
enum rly_kind { PK_UDP_UP, PK_UDP_DOWN, PK_TCP };

struct rly_ev_tag {
	enum rly_ev type;
	void	   *obj;
	int	    side;
};

struct rly_rule;

struct rly_flow { /* UDP: one client address of a rule */
	struct rly_rule	  *rule;
	struct sockaddr_in client;
	int		   fd, refs;
	bool		   dead;
	uint64_t	   last_ns;
	struct rly_ev_tag  tag;
	struct rly_flow	  *next;
};

struct rly_pkt {
	enum rly_kind	kind;
	void	       *owner; /* flow or conn */
	int		dir;   /* TCP: read from side dir, written to 1-dir */
	size_t		len, off;
	bool		eof;
	struct rly_pkt *next;
	unsigned char	data[];
};

struct rly_side {
	int		  fd;
	bool		  rd_eof, shut;
	struct rly_pkt	 *out, *out_tail; /* released, not yet written */
	struct rly_ev_tag tag;
	uint32_t	  events;
};

struct rly_conn {
	struct rly_side	 s[2]; /* 0 client, 1 target */
	bool		 connected, dead;
	int		 refs;
	size_t		 queued[2]; /* bytes read from side i not yet written */
	uint64_t	 last_t[2];
	struct rly_conn *prev, *next; /* rly.live, until killed */
};

struct rly_rule {
	bool		   tcp;
	char		   spec[128];
	struct sockaddr_in listen, target;
	int		   fd;
	struct rly_ev_tag  tag;
	struct rly_flow	  *flows;
	unsigned	   nflows;
};

struct rly_hent {
	uint64_t	t, seq;
	struct rly_pkt *p;
};

struct rly_state {
	double		   delay_ms, jitter_ms;
	unsigned	   udp_idle_s;
	uint64_t	   rng;
	int		   ep, tfd;
	struct rly_rule	   rules[RLY_MAX_RULES];
	unsigned	   nrules;
	struct rly_hent	  *heap;
	size_t		   nheap, capheap;
	uint64_t	   seq;
	size_t		   queued;
	struct rly_ev_tag  ttag;
	/* counters */
	unsigned long long pk[2], by[2], drops, conns;
	struct rly_conn	  *live; /* TCP connections not killed */
};

extern struct rly_state rly;

uint64_t rly_now(void);
/* epoll_ctl() of the relay's epoll set: returns -1 with errno set. */
int	 rly_ep_set(int op, int fd, uint32_t events, struct rly_ev_tag *tag);
/* Parses argv, opens the rules' sockets, epoll and the timerfd, writes the
 * ready file: 0, or -1 with a message naming the bad value in err. */
int	 rly_setup(int argc, char **argv, char *err, size_t errlen);

#endif

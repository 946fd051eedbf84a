/*
 * Measurements the endpoints write: one CSV row per connection (phase
 * times) and one row per IKE message (sizes), the raw data behind the
 * project's Table I and Table II (bench/ike). Files are appended to; the
 * header line is written when a file is empty.
 *
 * conn CSV:  role,mode,profile,conn,ok,init_ms,init_kmsd_ms,init_dh_ms,
 *            auth_ms,child_ms,total_ms,schedule
 * msgs CSV:  role,mode,profile,conn,exchange,mid,dir,kind,ike_len,frame_len,
 *            schedule
 *            (dir: I->R or R->I, original initiator = UE; kind: req/resp;
 *            frame_len = IKE length + 8 UDP + 20 IPv4 + 14 Ethernet, + 4 for
 *            the non-ESP marker on port 4500)
 * schedule:  qkd mode's QKD key schedule, paper or prf; "-" in other modes
 *            (the last column, so that the others keep their positions)
 */
#ifndef IKE_CSV_H
#define IKE_CSV_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define IKE_CSV_MSG_MAX 32 /* messages kept per connection */

struct ike_msg_stat {
	uint8_t	 exchange;
	uint32_t mid;
	int	 from_initiator; /* I->R */
	int	 response;
	size_t	 ike_len;
	size_t	 frame_len;
};

/* Per connection; times in ns (monotonic). */
struct ike_conn_stat {
	unsigned	    conn;
	int		    ok;
	uint64_t	    init_ns, init_kmsd_ns, init_dh_ns;
	uint64_t	    auth_ns, child_ns, total_ns;
	size_t		    nmsg;
	struct ike_msg_stat msg[IKE_CSV_MSG_MAX];
};

struct ike_csv {
	FILE	   *conn;
	FILE	   *msgs;
	const char *role, *mode, *profile, *sched;
};

/* Either path may be NULL (nothing written there). 0 or -1 with err. */
int  ike_csv_open(struct ike_csv *c, const char *conn_path,
     const char *msgs_path, const char *role, const char *mode,
     const char *profile, const char *sched, char *err, size_t errlen);
void ike_csv_close(struct ike_csv *c);
/* Writes the connection row and its message rows, and flushes. */
void ike_csv_write(struct ike_csv *c, const struct ike_conn_stat *s);

/* Records one message sent or received (ignored past IKE_CSV_MSG_MAX). */
void ike_stat_msg(struct ike_conn_stat *s, uint8_t exchange, uint32_t mid,
    int from_initiator, int response, size_t ike_len, int natt);

#endif

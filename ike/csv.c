/* CSV measurements: phase times per connection and sizes per message. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ike/csv.h"
#include "ike/ikev2.h"
#include "ike/net.h"

static FILE *
open_csv(const char *path, const char *header, char *err, size_t errlen)
{
	FILE *f;

	if ((f = fopen(path, "a")) == NULL) {
		snprintf(err, errlen, "cannot open CSV \"%s\": %s", path,
		    strerror(errno));
		return NULL;
	}
	if (ftell(f) == 0)
		fprintf(f, "%s\n", header);
	return f;
}

int
ike_csv_open(struct ike_csv *c, const char *conn_path, const char *msgs_path,
    const char *role, const char *mode, const char *profile, const char *sched,
    char *err, size_t errlen)
{
	memset(c, 0, sizeof(*c));
	c->role = role;
	c->mode = mode;
	c->profile = profile;
	c->sched = sched;
	if (conn_path != NULL &&
	    (c->conn = open_csv(conn_path,
		 "role,mode,profile,conn,ok,init_ms,init_kmsd_ms,init_dh_ms,"
		 "auth_ms,child_ms,total_ms,schedule",
		 err, errlen)) == NULL)
		return -1;
	if (msgs_path != NULL &&
	    (c->msgs = open_csv(msgs_path,
		 "role,mode,profile,conn,exchange,mid,dir,kind,ike_len,frame_len,"
		 "schedule",
		 err, errlen)) == NULL) {
		ike_csv_close(c);
		return -1;
	}
	return 0;
}

void
ike_csv_close(struct ike_csv *c)
{
	if (c->conn != NULL)
		fclose(c->conn);
	if (c->msgs != NULL)
		fclose(c->msgs);
	c->conn = c->msgs = NULL;
}

static double
ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

void
ike_csv_write(struct ike_csv *c, const struct ike_conn_stat *s)
{
	if (c->conn != NULL) {
		fprintf(c->conn,
		    "%s,%s,%s,%u,%d,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%s\n",
		    c->role, c->mode, c->profile, s->conn, s->ok,
		    ms(s->init_ns), ms(s->init_kmsd_ns), ms(s->init_dh_ns),
		    ms(s->auth_ns), ms(s->child_ns), ms(s->total_ns), c->sched);
		fflush(c->conn);
	}
	if (c->msgs == NULL)
		return;
	for (size_t i = 0; i < s->nmsg; i++) {
		const struct ike_msg_stat *m = &s->msg[i];

		fprintf(c->msgs, "%s,%s,%s,%u,%s,%u,%s,%s,%zu,%zu,%s\n",
		    c->role, c->mode, c->profile, s->conn,
		    ike_exchange_name(m->exchange), m->mid,
		    m->from_initiator ? "I->R" : "R->I",
		    m->response ? "resp" : "req", m->ike_len, m->frame_len,
		    c->sched);
	}
	fflush(c->msgs);
}

void
ike_stat_msg(struct ike_conn_stat *s, uint8_t exchange, uint32_t mid,
    int from_initiator, int response, size_t ike_len, int natt)
{
	struct ike_msg_stat *m;

	if (s->nmsg >= IKE_CSV_MSG_MAX)
		return;
	m = &s->msg[s->nmsg++];
	m->exchange = exchange;
	m->mid = mid;
	m->from_initiator = from_initiator;
	m->response = response;
	m->ike_len = ike_len;
	m->frame_len = ike_frame_len(ike_len, natt);
}

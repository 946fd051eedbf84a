/* The data plane's counters: engine totals and per Child SA, as text. */
#include <stddef.h>
#include <stdio.h>

#include <arpa/inet.h>

#include "ike/dp_int.h"
#include "ike/net.h"

/* Every field of struct dp_stats, in the order the text lists them. */
static const struct {
	const char *name;
	size_t	    off;
} fields[] = {
#define F(x)                                                                   \
	{                                                                      \
#x, offsetof(struct dp_stats, x)                               \
	}
	F(out_packets),
	F(out_bytes),
	F(tun_read_err),
	F(no_route),
	F(out_esp_err),
	F(out_expired),
	F(sock_send_err),
	F(in_packets),
	F(in_bytes),
	F(sock_recv_err),
	F(truncated),
	F(nonesp),
	F(keepalive),
	F(no_sa),
	F(in_replay),
	F(in_icv),
	F(in_pad),
	F(in_short),
	F(in_other),
	F(selector),
	F(bad_nh),
	F(gre_bad),
	F(qfi_bad),
	F(egress_err),
#undef F
};

static uint64_t
field(const struct dp_stats *s, size_t off)
{
	const uint64_t *p =
	    (const uint64_t *)(const void *)((const char *)s + off);

	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

void
dp_stats(struct dp *dp, struct dp_stats *st)
{
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		uint64_t *p = (uint64_t *)(void *)((char *)st + fields[i].off);

		/* Each counter is written in one of the two copies only. */
		*p = field(&dp->st_out, fields[i].off) +
		    field(&dp->st_in, fields[i].off);
	}
}

size_t
dp_expired(struct dp *dp, uint32_t *in_spis, size_t max)
{
	size_t n = 0;

	/* hard_told is the IKE thread's alone: the read lock will do */
	pthread_rwlock_rdlock(&dp->lock);
	for (size_t i = 0; i < dp->cfg.max_children && n < max; i++) {
		struct dp_rec *r = &dp->recs[i];

		if (r->used && !r->hard_told &&
		    (esp_sa_hard(r->in) || esp_sa_hard(r->out))) {
			r->hard_told = true;
			in_spis[n++] = r->in_spi;
		}
	}
	pthread_rwlock_unlock(&dp->lock);
	return n;
}

/* Under the lock. */
static size_t
rec_count(const struct dp *dp)
{
	size_t n = 0;

	for (size_t i = 0; i < dp->cfg.max_children; i++)
		n += dp->recs[i].used;
	return n;
}

size_t
dp_child_count(struct dp *dp)
{
	size_t n;

	pthread_rwlock_rdlock(&dp->lock);
	n = rec_count(dp);
	pthread_rwlock_unlock(&dp->lock);
	return n;
}

static int
rec_write(const struct dp *dp, const struct dp_rec *r, FILE *f)
{
	struct dp_child_stats s;
	char		      peer[64], inner[INET_ADDRSTRLEN];

	dp_rec_stats(dp, r, &s);
	ike_addr_str(&r->peer, peer, sizeof(peer));
	if (inet_ntop(AF_INET, &r->inner, inner, sizeof(inner)) == NULL)
		snprintf(inner, sizeof(inner), "?");
	return fprintf(f,
		   "child in_spi=0x%08x out_spi=0x%08x esn=%d kind=%s gre=%d "
		   "qfi=%u inner=%s peer=%s routed=%d soft=%d hard=%d "
		   "in_packets=%llu in_bytes=%llu in_replay=%llu "
		   "in_icv=%llu in_pad=%llu in_short=%llu in_seq=%llu "
		   "out_packets=%llu out_bytes=%llu out_seq=%llu\n",
		   ntohl(r->in_spi), ntohl(esp_sa_spi(r->out)),
		   esp_sa_esn(r->out),
		   r->kind == DP_SIGNALLING ? "signalling" : "user", r->gre,
		   r->qfi, inner, peer, s.routed, s.soft, s.hard,
		   (unsigned long long)s.in.packets,
		   (unsigned long long)s.in.bytes,
		   (unsigned long long)s.in.replay,
		   (unsigned long long)s.in.icv, (unsigned long long)s.in.pad,
		   (unsigned long long)s.in.shortp,
		   (unsigned long long)s.in.seq,
		   (unsigned long long)s.out.packets,
		   (unsigned long long)s.out.bytes,
		   (unsigned long long)s.out.seq) < 0 ?
	    -1 :
	    0;
}

int
dp_stats_write(struct dp *dp, FILE *f)
{
	struct dp_stats st;
	int		rc = 0;

	dp_stats(dp, &st);
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (fprintf(f, "dp %s %llu\n", fields[i].name,
			(unsigned long long)field(&st, fields[i].off)) < 0)
			rc = -1;
	pthread_rwlock_rdlock(&dp->lock);
	if (fprintf(f, "dp child_sas %zu\n", rec_count(dp)) < 0)
		rc = -1;
	for (size_t i = 0; i < dp->cfg.max_children; i++)
		if (dp->recs[i].used && rec_write(dp, &dp->recs[i], f) == -1)
			rc = -1;
	pthread_rwlock_unlock(&dp->lock);
	return rc;
}

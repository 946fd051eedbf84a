/*
 * Budgets for QKD key draws at the N3IWF: token buckets (tokens = keys),
 * a bounded table of buckets keyed by a string (source address, claimed
 * SAE ID), and a log limiter so that a flood cannot flood the log too.
 *
 * A bucket holds at most `burst` tokens and gains `rate` per second; a
 * draw of n keys takes n tokens or nothing. rate 0 and burst 0: no limit.
 */
#ifndef IKE_RATELIMIT_H
#define IKE_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ike_tb_cfg {
	double burst; /* tokens (keys); 0 with rate 0: unlimited */
	double rate;  /* tokens per second */
};

struct ike_tb {
	double	 tokens;
	uint64_t t_ns; /* last refill */
};

/* A full bucket at now_ns. */
void ike_tb_init(struct ike_tb *b, const struct ike_tb_cfg *c, uint64_t now_ns);
/* true: n tokens taken; false: not enough (nothing taken). */
bool ike_tb_take(struct ike_tb *b, const struct ike_tb_cfg *c, double n,
    uint64_t now_ns);
/* Tokens there would be at now_ns (refill applied, nothing taken). */
double ike_tb_level(const struct ike_tb *b, const struct ike_tb_cfg *c,
    uint64_t now_ns);
bool   ike_tb_unlimited(const struct ike_tb_cfg *c);
/* "BURST:RATE" (keys, keys per second) or "off"; -1 with err naming v. */
int    ike_tb_parse(const char *name, const char *v, struct ike_tb_cfg *c,
       char *err, size_t errlen);

/*
 * Buckets by key, in a fixed table (no allocation per stranger). When the
 * few slots a key may live in are taken, the fullest bucket among them is
 * reused: a full bucket is what a new key would get anyway, so eviction
 * never hands an attacker more than a fresh key would.
 */
#define IKE_RL_KEYLEN 136 /* an SAE ID (128) fits whole */
#define IKE_RL_PROBE  8

struct ike_rl_ent {
	char	      key[IKE_RL_KEYLEN];
	struct ike_tb tb;
};

struct ike_rl {
	struct ike_tb_cfg  cfg;
	struct ike_rl_ent *ent;
	size_t		   cap; /* a power of two */
};

int    ike_rl_init(struct ike_rl *rl, const struct ike_tb_cfg *c, size_t cap);
void   ike_rl_free(struct ike_rl *rl);
/* Tokens key's bucket holds now (burst for a key not in the table). */
double ike_rl_level(const struct ike_rl *rl, const char *key, uint64_t now_ns);
/* true: n tokens taken from key's bucket; false: over budget. */
bool ike_rl_take(struct ike_rl *rl, const char *key, double n, uint64_t now_ns);

/* At most one log line per interval; counts what it held back. */
struct ike_loglim {
	uint64_t      interval_ns;
	uint64_t      last_ns;
	unsigned long held; /* suppressed since the last line */
};

/* true: log now (and *held = lines suppressed before it); false: quiet. */
bool ike_loglim_ok(struct ike_loglim *l, uint64_t now_ns, unsigned long *held);

#endif

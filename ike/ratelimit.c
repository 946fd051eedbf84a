/* Token buckets for the N3IWF's QKD key budgets (ike/README.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ike/ratelimit.h"

bool
ike_tb_unlimited(const struct ike_tb_cfg *c)
{
	return c->burst == 0 && c->rate == 0;
}

void
ike_tb_init(struct ike_tb *b, const struct ike_tb_cfg *c, uint64_t now_ns)
{
	b->tokens = c->burst;
	b->t_ns = now_ns;
}

double
ike_tb_level(const struct ike_tb *b, const struct ike_tb_cfg *c,
    uint64_t now_ns)
{
	double t = b->tokens;

	if (ike_tb_unlimited(c))
		return 1e18;
	if (now_ns > b->t_ns)
		t += c->rate * (double)(now_ns - b->t_ns) / 1e9;
	return t > c->burst ? c->burst : t;
}

bool
ike_tb_take(struct ike_tb *b, const struct ike_tb_cfg *c, double n,
    uint64_t now_ns)
{
	if (ike_tb_unlimited(c))
		return true;
	b->tokens = ike_tb_level(b, c, now_ns);
	if (now_ns > b->t_ns)
		b->t_ns = now_ns; /* a clock step back never adds tokens */
	if (b->tokens < n)
		return false;
	b->tokens -= n;
	return true;
}

int
ike_tb_parse(const char *name, const char *v, struct ike_tb_cfg *c, char *err,
    size_t errlen)
{
	char  *end;
	double burst, rate;

	if (strcmp(v, "off") == 0) {
		c->burst = c->rate = 0;
		return 0;
	}
	burst = strtod(v, &end);
	if (end == v || *end != ':')
		goto bad;
	rate = strtod(end + 1, &end);
	if (end == strchr(v, ':') + 1 || *end != '\0' ||
	    !(burst >= 1 && burst <= 1e9) || !(rate >= 0 && rate <= 1e9))
		goto bad;
	c->burst = burst;
	c->rate = rate;
	return 0;
bad:
	snprintf(err, errlen,
	    "%s \"%s\" is not BURST:RATE (keys >= 1, keys per "
	    "second >= 0) or off",
	    name, v);
	return -1;
}

int
ike_rl_init(struct ike_rl *rl, const struct ike_tb_cfg *c, size_t cap)
{
	size_t p = 16;

	while (p < cap)
		p <<= 1;
	rl->cfg = *c;
	rl->cap = p;
	rl->ent = calloc(p, sizeof(*rl->ent));
	return rl->ent == NULL ? -1 : 0;
}

void
ike_rl_free(struct ike_rl *rl)
{
	free(rl->ent);
	rl->ent = NULL;
	rl->cap = 0;
}

/* FNV-1a; the table bounds the harm of collisions, not the hash. */
static uint64_t
rl_hash(const char *s)
{
	uint64_t h = 14695981039346656037ull;

	while (*s)
		h = (h ^ (uint8_t)*s++) * 1099511628211ull;
	return h;
}

double
ike_rl_level(const struct ike_rl *rl, const char *key, uint64_t now_ns)
{
	size_t h = (size_t)rl_hash(key);

	if (ike_tb_unlimited(&rl->cfg))
		return 1e18;
	for (size_t i = 0; i < IKE_RL_PROBE; i++) {
		const struct ike_rl_ent *x = &rl->ent[(h + i) & (rl->cap - 1)];

		if (x->key[0] && strncmp(x->key, key, IKE_RL_KEYLEN - 1) == 0)
			return ike_tb_level(&x->tb, &rl->cfg, now_ns);
	}
	return rl->cfg.burst;
}

bool
ike_rl_take(struct ike_rl *rl, const char *key, double n, uint64_t now_ns)
{
	struct ike_rl_ent *e = NULL, *full = NULL;
	double		   best = -1;
	size_t		   h;

	if (ike_tb_unlimited(&rl->cfg))
		return true;
	h = (size_t)rl_hash(key);
	for (size_t i = 0; i < IKE_RL_PROBE; i++) {
		struct ike_rl_ent *x = &rl->ent[(h + i) & (rl->cap - 1)];
		double		   lv;

		if (x->key[0] && strncmp(x->key, key, IKE_RL_KEYLEN - 1) == 0) {
			e = x;
			break;
		}
		lv = x->key[0] ? ike_tb_level(&x->tb, &rl->cfg, now_ns) :
				 rl->cfg.burst + 1;
		if (lv > best) {
			best = lv;
			full = x;
		}
	}
	if (e == NULL) {
		e = full;
		snprintf(e->key, sizeof(e->key), "%s", key);
		ike_tb_init(&e->tb, &rl->cfg, now_ns);
	}
	return ike_tb_take(&e->tb, &rl->cfg, n, now_ns);
}

bool
ike_loglim_ok(struct ike_loglim *l, uint64_t now_ns, unsigned long *held)
{
	if (l->last_ns != 0 && now_ns - l->last_ns < l->interval_ns) {
		l->held++;
		return false;
	}
	*held = l->held;
	l->held = 0;
	l->last_ns = now_ns;
	return true;
}

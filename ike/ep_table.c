/*
 * The endpoint's SA table (ike/endpoint.h): the dense array, the hash by
 * SPIi and the deadline heap (ike/satab.h), the half-open count kept as
 * SAs change, the list of SAs touched since the last pass, and the timer
 * pass that ticks only due or touched SAs.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "ike/endpoint.h"
#include "ike/rekey.h"

int
ike_ep_table_init(struct ike_ep *ep, size_t max)
{
	ep->max_sa = max;
	ep->sig_seen = ike_rekey_sig_gen();
	ep->full_log.interval_ns = 1000000000u;
	if ((ep->sa = calloc(max, sizeof(*ep->sa))) == NULL ||
	    ike_satab_init(&ep->tab, max) == -1)
		return -1;
	return 0;
}

static bool
ep_is_half_open(const struct ike_sa *sa)
{
	return sa->state == SA_INIT ||
	    (sa->state == SA_AUTH && !sa->auth_started);
}

/* sa's place in the half-open count, as its state says now. */
static void
ep_count(struct ike_ep *ep, struct ike_sa *sa)
{
	bool ho = sa->state != SA_DEAD && ep_is_half_open(sa);

	if (ho != sa->tab.ho) {
		if (ho)
			ep->half_open++;
		else
			ep->half_open--;
		sa->tab.ho = ho;
	}
}

bool
ike_ep_full(const struct ike_ep *ep)
{
	return ep->nsa >= ep->max_sa;
}

int
ike_ep_add(struct ike_ep *ep, struct ike_sa *sa)
{
	unsigned long held;

	if (ike_ep_full(ep)) {
		if (ike_loglim_ok(&ep->full_log, time_mono_ns(), &held))
			log_warn("%zu IKE SAs (max_ike_sas): a new IKE SA "
				 "refused (%lu more not logged)",
			    ep->nsa, held);
		return -1;
	}
	sa->tab.idx = ep->nsa;
	ep->sa[ep->nsa++] = sa;
	ike_satab_insert(&ep->tab, sa);
	ike_ep_touch(ep, sa);
	ep_count(ep, sa);
	return 0;
}

void
ike_ep_touch(struct ike_ep *ep, struct ike_sa *sa)
{
	if (sa == NULL || sa->tab.touched)
		return;
	sa->tab.touched = true;
	sa->tab.t_next = ep->touched;
	ep->touched = sa;
}

/* An initiator's SA in IKE_SA_INIT has no SPIr yet: SPIi alone names it. */
struct ike_sa *
ike_ep_find(struct ike_ep *ep, const uint8_t spi_i[static IKE_SPI_LEN],
    const uint8_t spi_r[static IKE_SPI_LEN])
{
	struct ike_sa *sa = ike_satab_chain(&ep->tab, spi_i);

	for (; sa != NULL; sa = sa->tab.h_next) {
		if (memcmp(sa->spi_i, spi_i, IKE_SPI_LEN) != 0)
			continue;
		if (memcmp(sa->spi_r, spi_r, IKE_SPI_LEN) == 0 ||
		    (sa->initiator && sa->state == SA_INIT)) {
			ike_ep_touch(ep, sa);
			return sa;
		}
	}
	return NULL;
}

size_t
ike_ep_half_open(struct ike_ep *ep)
{
	for (struct ike_sa *sa = ep->touched; sa != NULL; sa = sa->tab.t_next)
		ep_count(ep, sa);
	return ep->half_open;
}

void
ike_ep_detach(struct ike_ep *ep, struct ike_sa *sa)
{
	size_t i = sa->tab.idx;

	if (sa->tab.touched) {
		struct ike_sa **pp = &ep->touched;

		while (*pp != sa)
			pp = &(*pp)->tab.t_next;
		*pp = sa->tab.t_next;
		sa->tab.t_next = NULL;
		sa->tab.touched = false;
	}
	if (sa->tab.ho)
		ep->half_open--;
	sa->tab.ho = sa->tab.armed = false;
	ike_satab_remove(&ep->tab, sa);
	ep->sa[i] = ep->sa[--ep->nsa];
	ep->sa[i]->tab.idx = i;
}

/* Out of the table and freed. */
static void
ep_remove(struct ike_ep *ep, struct ike_sa *sa)
{
	if (ep->role.gone != NULL)
		ep->role.gone(ep->role.ctx, sa);
	/* the data plane forgets its Child SAs first, the replaced ones too */
	ike_rekey_unplug(ep, sa);
	ike_ep_detach(ep, sa);
	ike_sa_free(sa);
}

/* The touched list, emptied: each SA handed to fn (NULL: just dropped). */
static void
ep_untouch(struct ike_ep *ep,
    void (*fn)(struct ike_ep *, struct ike_sa *, uint64_t), uint64_t now)
{
	struct ike_sa *sa;

	while ((sa = ep->touched) != NULL) {
		ep->touched = sa->tab.t_next;
		sa->tab.t_next = NULL;
		sa->tab.touched = false;
		if (fn != NULL)
			fn(ep, sa, now);
	}
}

void
ike_ep_sweep(struct ike_ep *ep)
{
	ep_untouch(ep, NULL, 0);
	for (size_t i = 0; i < ep->nsa;)
		if (ep->sa[i]->state == SA_DEAD)
			ep_remove(ep, ep->sa[i]); /* the last one moved to i */
		else
			ep_count(ep, ep->sa[i++]);
}

/* A touched SA: freed when dead; else due now, unless its tick just ran. */
static void
ep_reap(struct ike_ep *ep, struct ike_sa *sa, uint64_t now)
{
	if (sa->state == SA_DEAD) {
		ep_remove(ep, sa);
		return;
	}
	ep_count(ep, sa);
	if (!sa->tab.armed)
		ike_satab_arm(&ep->tab, sa, now);
	sa->tab.armed = false;
}

/* After a SIGUSR2 every SA is due (the operator's rekey). */
static void
ep_signal(struct ike_ep *ep, uint64_t now)
{
	unsigned long g = ike_rekey_sig_gen();

	if (g == ep->sig_seen)
		return;
	ep->sig_seen = g;
	for (size_t i = 0; i < ep->nsa; i++)
		ike_satab_arm(&ep->tab, ep->sa[i], now);
}

int
ike_ep_timers(struct ike_ep *ep,
    int (*tick)(void *ctx, struct ike_sa *sa, uint64_t now), void *ctx,
    int max_ms)
{
	uint64_t       now = time_mono_ns(), next;
	struct ike_sa *sa;
	int	       w;

	ep_signal(ep, now);
	ep_untouch(ep, ep_reap, now);
	while ((sa = ike_satab_due(&ep->tab, now)) != NULL) {
		w = tick(ctx, sa, now);
		ike_satab_arm(&ep->tab, sa,
		    w == INT_MAX ? UINT64_MAX : now + (uint64_t)w * 1000000u);
		sa->tab.armed = true;
		ike_ep_touch(ep, sa);
	}
	ep_untouch(ep, ep_reap, now);
	if ((next = ike_satab_next(&ep->tab)) <= now)
		return 0;
	if (next - now >= (uint64_t)max_ms * 1000000u)
		return max_ms;
	return (int)((next - now + 999999u) / 1000000u);
}

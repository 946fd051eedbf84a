/* The tunnel: TUN, route, data-plane engine, Child SA hooks (ike/tnl.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <net/route.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "ike/dp.h"
#include "ike/esp.h"
#include "ike/ikev2.h"
#include "ike/rekey.h"
#include "ike/sa.h"
#include "ike/tnl.h"
#include "ike/tun.h"

static bool
tnl_is_ue(const struct tnl *t)
{
	return t->ep->cfg->role == IKE_ROLE_UE;
}

static uint32_t
tnl_spi_in(const struct tnl *t, const struct ike_child *ch)
{
	return tnl_is_ue(t) ? ch->spi_i : ch->spi_r;
}

/* One direction of ch: UE -> N3IWF (u2n) keys ei/ai, else er/ar. */
static struct esp_sa *
tnl_esp(const struct tnl *t, const struct ike_child *ch, bool u2n,
    bool outbound, char *err, size_t errlen)
{
	const struct ikecfg  *c = t->ep->cfg;
	const struct ike_key *e = u2n ? &ch->keys->ei : &ch->keys->er;
	const struct ike_key *a = u2n ? &ch->keys->ai : &ch->keys->ar;
	struct esp_sa_cfg     ec;

	memset(&ec, 0, sizeof(ec));
	ec.spi = u2n ? ch->spi_r : ch->spi_i; /* the receiver's SPI */
	ec.outbound = outbound;
	ec.esn = ike_prop_uses_esn(&ch->prop);
	ec.enc_key = e->k;
	ec.enc_len = e->len;
	if (ch->prop.encr == IKE_ENCR_AES_GCM_16)
		ec.alg = ESP_AES_GCM_256;
	else {
		ec.alg = ESP_AES_CBC_256_SHA256;
		ec.integ_key = a->k;
		ec.integ_len = a->len;
	}
	ec.life.soft_bytes = c->child_soft_bytes;
	ec.life.hard_bytes = c->child_hard_bytes;
	ec.life.soft_packets = c->child_soft_pkts;
	ec.life.hard_packets = c->child_hard_pkts;
	return esp_sa_new(&ec, err, errlen);
}

/* The engine's view of ch: both SAs, peer, kind, GRE, inner address. */
static int
tnl_child(const struct tnl *t, const struct ike_sa *sa,
    const struct ike_child *ch, struct dp_child *d, char *err, size_t errlen)
{
	bool ue = tnl_is_ue(t), nwu = t->ep->cfg->profile == IKE_PROFILE_NWU;

	memset(d, 0, sizeof(*d));
	if (ch->keys == NULL) {
		snprintf(err, errlen, "Child SA without keys");
		return -1;
	}
	d->in = tnl_esp(t, ch, !ue, false, err, errlen);
	d->out = d->in != NULL ? tnl_esp(t, ch, ue, true, err, errlen) : NULL;
	if (d->out == NULL) {
		esp_sa_free(d->in);
		return -1;
	}
	d->peer = sa->peer;
	d->kind = !nwu || ch->up ? DP_USER : DP_SIGNALLING;
	d->gre = nwu && ch->up;
	d->qfi = d->gre ? TNL_QFI : 0;
	/* N3IWF: the address this UE got in CP (nwu), else cfg inner_ip */
	d->inner =
	    tnl_is_ue(t) || sa->cp_addr.s_addr == 0 ? t->inner : sa->cp_addr;
	return 0;
}

bool
tnl_has(const struct tnl *t, const struct ike_child *ch)
{
	struct dp_child_stats st;

	return t->dp != NULL &&
	    dp_child_stats(t->dp, tnl_spi_in(t, ch), &st) == 0;
}

/*
 * The installed pair of sa serving what ch will serve (a rekey's new SA
 * is installed while the one it replaces is still in sa's slot): its
 * inbound SPI, or 0.
 */
static uint32_t
tnl_sibling(const struct tnl *t, const struct ike_sa *sa,
    const struct ike_child *ch)
{
	for (size_t i = 0; i < sa->nchild; i++)
		if (sa->child[i].up == ch->up &&
		    tnl_spi_in(t, &sa->child[i]) != tnl_spi_in(t, ch) &&
		    tnl_has(t, &sa->child[i]))
			return tnl_spi_in(t, &sa->child[i]);
	return 0;
}

int
tnl_install(struct tnl *t, const struct ike_sa *sa, const struct ike_child *ch)
{
	struct dp_child d;
	char		err[256];
	uint32_t	sib;
	int		r = -1;

	if (tnl_has(t, ch))
		return 0; /* installed before the IKE SA was established */
	/* A rekey's new SA: routed by the `replaced` hook that follows. */
	sib = tnl_sibling(t, sa, ch);
	if (tnl_child(t, sa, ch, &d, err, sizeof(err)) == 0)
		r = sib != 0 ?
		    dp_child_rekey_later(t->dp, sib, &d, err, sizeof(err)) :
		    dp_child_add(t->dp, &d, err, sizeof(err));
	if (r == -1) {
		log_err("data plane: Child SA %08x: %s",
		    ntohl(tnl_spi_in(t, ch)), err);
		return -1;
	}
	log_debug("data plane: %s Child SA in %08x out %08x installed (%s)",
	    d.kind == DP_USER ? "user-plane" : "signalling",
	    ntohl(tnl_spi_in(t, ch)), ntohl(esp_sa_spi(d.out)),
	    esp_sa_esn(d.out) ? "ESN" : "32-bit sequence numbers");
	return 0;
}

static void
tnl_on_installed(void *ctx, const struct ike_sa *sa, const struct ike_child *ch)
{
	(void)tnl_install(ctx, sa, ch);
}

/* The route moves to pending rekey i's new pair; i leaves the list. */
static void
tnl_pend_route(struct tnl *t, size_t i)
{
	(void)dp_child_route(t->dp, t->pend[i].new_in);
	t->pend[i] = t->pend[--t->npend];
}

/* Pending rekeys whose new pair has seen a packet: route to it. */
static void
tnl_pend_check(struct tnl *t)
{
	struct dp_child_stats st;

	for (size_t i = 0; i < t->npend;)
		if (dp_child_stats(t->dp, t->pend[i].new_in, &st) == -1)
			t->pend[i] = t->pend[--t->npend]; /* gone */
		else if (st.in.packets > 0)
			tnl_pend_route(t, i);
		else
			i++;
}

static void
tnl_on_replaced(void *ctx, const struct ike_sa *sa, const struct ike_child *old,
    const struct ike_child *ch, bool started)
{
	struct tnl     *t = ctx;
	struct dp_child d;
	char		err[256];
	uint32_t	oin = tnl_spi_in(t, old);
	bool		later = !started && t->npend < TNL_PENDING;
	int		r = -1;

	if (tnl_has(t, ch)) /* installed unrouted by `installed` */
		r = later ? 0 : dp_child_route(t->dp, tnl_spi_in(t, ch));
	else if (tnl_child(t, sa, ch, &d, err, sizeof(err)) == 0)
		r = later ?
		    dp_child_rekey_later(t->dp, oin, &d, err, sizeof(err)) :
		    dp_child_rekey(t->dp, oin, &d, err, sizeof(err));
	if (r == 0 && later)
		t->pend[t->npend++] =
		    (struct tnl_pending){ oin, tnl_spi_in(t, ch) };
	if (r == -1) {
		log_err("data plane: rekey of Child SA %08x: %s",
		    ntohl(tnl_spi_in(t, old)), err);
		return;
	}
	log_debug("data plane: Child SA %08x rekeyed to %08x",
	    ntohl(tnl_spi_in(t, old)), ntohl(tnl_spi_in(t, ch)));
}

/* Removed pair i of the grave list leaves the engine (keys wiped). */
static void
tnl_bury(struct tnl *t, size_t i)
{
	if (dp_child_del(t->dp, t->grave[i].in_spi) == 0)
		log_debug("data plane: Child SA %08x removed",
		    ntohl(t->grave[i].in_spi));
	t->grave[i] = t->grave[--t->ngrave];
}

/*
 * The pair stops sending at once (unrouted), and leaves the engine
 * TNL_GRACE_MS later; a second call for the same pair does nothing.
 */
static void
tnl_on_removed(void *ctx, const struct ike_sa *sa, const struct ike_child *ch)
{
	struct tnl *t = ctx;
	uint32_t    in = tnl_spi_in(t, ch);

	(void)sa;
	for (size_t i = 0; i < t->npend; i++)
		if (t->pend[i].old_in == in) {
			tnl_pend_route(t, i); /* the old one goes: send anew */
			break;
		}
	for (size_t i = 0; i < t->ngrave; i++)
		if (t->grave[i].in_spi == in)
			return;
	if (dp_child_unroute(t->dp, in) == -1)
		return; /* not in the engine */
	if (t->ngrave == TNL_PENDING)
		tnl_bury(t, 0);
	t->grave[t->ngrave].in_spi = in;
	t->grave[t->ngrave++].at = time_mono_ns() + TNL_GRACE_MS * 1000000ull;
}

/* "A.B.C.D/N" or "default" into address and netmask (network order). */
static int
tnl_route_parse(const char *route, struct in_addr *dst, struct in_addr *mask)
{
	char	      ip[INET_ADDRSTRLEN];
	const char   *slash;
	char	     *end;
	unsigned long n;

	if (strcmp(route, "default") == 0) {
		dst->s_addr = mask->s_addr = 0;
		return 0;
	}
	if ((slash = strchr(route, '/')) == NULL ||
	    (size_t)(slash - route) >= sizeof(ip))
		return -1;
	memcpy(ip, route, (size_t)(slash - route));
	ip[slash - route] = '\0';
	errno = 0;
	n = strtoul(slash + 1, &end, 10);
	if (inet_pton(AF_INET, ip, dst) != 1 || *end != '\0' || errno != 0 ||
	    end == slash + 1 || n > 32)
		return -1;
	mask->s_addr = n == 0 ? 0 : htonl(~0u << (32 - n));
	dst->s_addr &= mask->s_addr;
	return 0;
}

int
tnl_route_add(const char *ifname, const char *route, char *err, size_t errlen)
{
	struct rtentry	    rt;
	struct sockaddr_in *s;
	struct in_addr	    dst, mask;
	char		    dev[IFNAMSIZ];
	int		    fd, r;

	if (tnl_route_parse(route, &dst, &mask) == -1) {
		snprintf(err, errlen,
		    "route \"%s\" is not A.B.C.D/N or default", route);
		return -1;
	}
	memset(&rt, 0, sizeof(rt));
	s = (struct sockaddr_in *)(void *)&rt.rt_dst;
	s->sin_family = AF_INET;
	s->sin_addr = dst;
	s = (struct sockaddr_in *)(void *)&rt.rt_genmask;
	s->sin_family = AF_INET;
	s->sin_addr = mask;
	rt.rt_flags = RTF_UP | (mask.s_addr == 0xffffffffu ? RTF_HOST : 0);
	snprintf(dev, sizeof(dev), "%s", ifname);
	rt.rt_dev = dev;
	if ((fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	r = ioctl(fd, SIOCADDRT, &rt);
	if (r == -1 && errno != EEXIST)
		snprintf(err, errlen, "route %s dev %s: %s", route, ifname,
		    strerror(errno));
	close(fd);
	return r == -1 && errno != EEXIST ? -1 : 0;
}

static int
tnl_engine(struct tnl *t, struct in_addr nas_ip, char *err, size_t errlen)
{
	const struct ikecfg *c = t->ep->cfg;
	struct dp_cfg	     dc;

	memset(&dc, 0, sizeof(dc));
	dc.role = tnl_is_ue(t) ? DP_ROLE_UE : DP_ROLE_N3IWF;
	dc.tun_fd = t->tun_fd;
	dc.local = tnl_is_ue(t) ? t->ep->net.ike_addr : t->ep->net.natt_addr;
	dc.nas_ip =
	    c->profile == IKE_PROFILE_NWU ? nas_ip : (struct in_addr){ 0 };
	dc.spin_us = c->tun_spin_us;
	if ((t->dp = dp_new(&dc, err, errlen)) == NULL)
		return -1;
	return dp_start(t->dp, err, errlen);
}

int
tnl_open(struct tnl *t, struct ike_ep *ep, struct in_addr tun_addr,
    struct in_addr inner, struct in_addr nas_ip, char *err, size_t errlen)
{
	const struct ikecfg *c = ep->cfg;
	char		     def[IKECFG_HOSTLEN + 3];
	const char	    *route = c->tun_route;
	char		     ip[INET_ADDRSTRLEN];

	memset(t, 0, sizeof(*t));
	t->ep = ep;
	t->inner = inner;
	if (route == NULL && c->role == IKE_ROLE_UE)
		route = "default";
	else if (route == NULL) {
		snprintf(def, sizeof(def), "%s/32", c->inner_ip);
		route = def;
	}
	if ((t->tun_fd = tun_setup(c->tun_name, tun_addr, 32, 0, t->ifname, err,
		 errlen)) == -1)
		return -1;
	if (tnl_route_add(t->ifname, route, err, errlen) == -1 ||
	    tnl_engine(t, nas_ip, err, errlen) == -1) {
		tnl_close(t);
		return -1;
	}
	ep->hooks.installed = tnl_on_installed;
	ep->hooks.replaced = tnl_on_replaced;
	ep->hooks.removed = tnl_on_removed;
	ep->hooks.ctx = t;
	log_info("tunnel: TUN %s %s, route %s, ESP on UDP %u", t->ifname,
	    inet_ntop(AF_INET, &tun_addr, ip, sizeof(ip)), route,
	    ntohs(c->role == IKE_ROLE_UE ? ep->net.ike_addr.sin_port :
					   ep->net.natt_addr.sin_port));
	return 0;
}

void
tnl_close(struct tnl *t)
{
	if (t->ep != NULL && t->ep->hooks.ctx == t)
		memset(&t->ep->hooks, 0, sizeof(t->ep->hooks));
	if (t->dp != NULL) { /* the removed pairs go; the last status */
		while (t->ngrave > 0)
			tnl_bury(t, 0);
		tnl_status(t);
	}
	dp_free(t->dp); /* joins the threads, wipes every SA */
	t->dp = NULL;
	if (t->tun_fd > 0)
		tun_close(t->tun_fd);
	t->tun_fd = -1;
}

void
tnl_status(struct tnl *t)
{
	const char *path = t->ep->cfg->status_file;
	char	    tmp[4096];
	FILE	   *f;
	int	    r;

	if (path == NULL || t->dp == NULL)
		return;
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if ((f = fopen(tmp, "w")) == NULL) {
		log_warn("status file %s: %s", tmp, strerror(errno));
		return;
	}
	r = dp_stats_write(t->dp, f);
	if (fclose(f) != 0 || r == -1 || rename(tmp, path) != 0)
		log_warn("status file %s: not written", path);
}

/*
 * Hard limits: each pair the engine reports (once) that is a Child SA
 * in use is deleted (ike_rekey_child_hard); a replaced one is on its way
 * out already.
 */
static void
tnl_hard(struct tnl *t)
{
	uint32_t spi[64];
	size_t	 n = dp_expired(t->dp, spi, 64);

	for (size_t k = 0; k < n; k++)
		for (size_t i = 0; i < t->ep->nsa; i++) {
			struct ike_sa *sa = t->ep->sa[i];

			for (size_t j = 0; j < sa->nchild; j++) {
				if (tnl_spi_in(t, &sa->child[j]) != spi[k])
					continue;
				log_info("data plane: Child SA %08x/%08x "
					 "reached a hard byte, packet or "
					 "sequence number limit",
				    sa->child[j].spi_i, sa->child[j].spi_r);
				ike_rekey_child_hard(sa, &sa->child[j]);
				ike_ep_touch(t->ep, sa); /* its timers run */
			}
		}
}

/* Byte and packet soft lifetimes: the engine says, the rekey starts. */
static void
tnl_soft(struct tnl *t)
{
	struct dp_child_stats st;

	for (size_t i = 0; i < t->ep->nsa; i++) {
		struct ike_sa *sa = t->ep->sa[i];

		if (sa->state != SA_ESTABLISHED)
			continue;
		for (size_t j = 0; j < sa->nchild; j++)
			if (dp_child_stats(t->dp, tnl_spi_in(t, &sa->child[j]),
				&st) == 0 &&
			    st.soft) {
				ike_rekey_child_soft(sa, &sa->child[j]);
				ike_ep_touch(t->ep, sa);
			}
	}
}

void
tnl_tick(struct tnl *t)
{
	uint64_t now = time_mono_ns();

	if (t->dp == NULL)
		return;
	tnl_pend_check(t);
	for (size_t i = 0; i < t->ngrave;)
		if (now >= t->grave[i].at)
			tnl_bury(t, i);
		else
			i++;
	if (now < t->next_tick)
		return;
	t->next_tick = now + 1000000000ull;
	tnl_hard(t);
	tnl_soft(t);
	tnl_status(t);
}

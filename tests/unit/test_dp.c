/*
 * ike/dp: two engines (UE, N3IWF) in one process on 127.0.0.1, each
 * beside an IKE socket from ike/net.c (the SO_REUSEPORT group), with a
 * datagram socketpair standing in for each TUN device (one packet per
 * read and write, as a TUN gives): packets both ways through real ESP
 * (AES-GCM) and GRE, counted at both ends; the inner-source selector and
 * the QFI check; make-before-break rekey (the old inbound SA still
 * accepts, the route moves, delete); hard limits (packets, the sequence
 * space) reported once, unroute, the pair count; an IKE datagram on the shared port
 * reaches the IKE socket, not the engine; a NAT-T socket without
 * SO_REUSEPORT is refused; the lookup table against a reference.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <sys/socket.h>

#include "common/log.h"
#include "ike/dp_int.h"
#include "ike/net.h"

#define UE_INNER 0x0a2d0002u /* 10.45.0.2 */
#define NAS_IP	 0x0a2d0001u /* 10.45.0.1 */
#define DN_ADDR	 0x0a2d00feu /* 10.45.0.254 */

struct side {
	struct ike_net net;
	int	       tun[2]; /* [0] the engine's, [1] the test's */
	struct dp     *dp;
};

static struct side ue, n3;

static void
side_open(struct side *s, enum dp_role role)
{
	struct dp_cfg c = { 0 };
	char	      err[256];

	assert_int_equal(ike_net_client(&s->net, "127.0.0.1", err, sizeof(err)),
	    0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM, 0, s->tun), 0);
	c.role = role;
	c.tun_fd = s->tun[0];
	c.local = s->net.ike_addr;
	c.nas_ip.s_addr = htonl(NAS_IP);
	s->dp = dp_new(&c, err, sizeof(err));
	if (s->dp == NULL)
		fail_msg("dp_new: %s", err);
	assert_int_equal(dp_start(s->dp, err, sizeof(err)), 0);
}

static void
side_close(struct side *s)
{
	dp_free(s->dp);
	close(s->tun[0]);
	close(s->tun[1]);
	ike_net_close(&s->net);
}

static int
setup(void **state)
{
	(void)state;
	side_open(&ue, DP_ROLE_UE);
	side_open(&n3, DP_ROLE_N3IWF);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	side_close(&ue);
	side_close(&n3);
	return 0;
}

static struct esp_lifetime life; /* sa(): the lifetimes of new SAs */

static struct esp_sa *
sa(uint32_t spi, bool outbound)
{
	uint8_t		  key[36];
	struct esp_sa_cfg c = { 0 };
	struct esp_sa	 *s;
	char		  err[128];

	/* The key is a function of the SPI: both ends make the same. */
	for (size_t i = 0; i < sizeof(key); i++)
		key[i] = (uint8_t)(spi * 7 + i);
	c.spi = htonl(spi);
	c.alg = ESP_AES_GCM_256;
	c.esn = true;
	c.outbound = outbound;
	c.enc_key = key;
	c.enc_len = sizeof(key);
	c.life = life;
	s = esp_sa_new(&c, err, sizeof(err));
	if (s == NULL)
		fail_msg("esp_sa_new: %s", err);
	return s;
}

static bool plain_ip; /* install(): rfc7296's plain IP, no GRE */

/* A user-plane pair UE -> N3IWF SPI u2n, back n2u, GRE with qfi. */
static void
install(uint32_t u2n, uint32_t n2u, uint8_t ue_qfi, uint8_t n3_qfi,
    uint32_t old_ue_in, uint32_t old_n3_in)
{
	struct dp_child c = { 0 };
	char		err[256];

	c.kind = DP_USER;
	c.gre = !plain_ip;
	c.inner.s_addr = htonl(UE_INNER);
	c.in = sa(n2u, false);
	c.out = sa(u2n, true);
	c.peer = n3.net.ike_addr;
	c.qfi = ue_qfi;
	assert_int_equal(old_ue_in == 0 ?
		dp_child_add(ue.dp, &c, err, sizeof(err)) :
		dp_child_rekey(ue.dp, htonl(old_ue_in), &c, err, sizeof(err)),
	    0);
	c.in = sa(u2n, false);
	c.out = sa(n2u, true);
	c.peer = ue.net.ike_addr;
	c.qfi = n3_qfi;
	assert_int_equal(old_n3_in == 0 ?
		dp_child_add(n3.dp, &c, err, sizeof(err)) :
		dp_child_rekey(n3.dp, htonl(old_n3_in), &c, err, sizeof(err)),
	    0);
}

/* The UE's user-plane pair (GRE, QFI 5), inbound SPI in, outbound out. */
static void
ue_pair(struct dp_child *c, uint32_t in, uint32_t out)
{
	memset(c, 0, sizeof(*c));
	c->kind = DP_USER;
	c->gre = true;
	c->qfi = 5;
	c->inner.s_addr = htonl(UE_INNER);
	c->in = sa(in, false);
	c->out = sa(out, true);
	c->peer = n3.net.ike_addr;
}

/* An IPv4/UDP packet src -> dst with a payload tag; its length. */
static size_t
ip4(uint8_t *p, uint32_t src, uint32_t dst, uint8_t tag)
{
	uint32_t s = htonl(src), d = htonl(dst);

	memset(p, 0, 64);
	p[0] = 0x45;
	p[3] = 64;
	p[8] = 64;
	p[9] = 17;
	memcpy(p + 12, &s, 4);
	memcpy(p + 16, &d, 4);
	p[40] = tag;
	return 64;
}

/* Writes a packet into from's TUN; true if it comes out of to's. */
static bool
through(struct side *from, struct side *to, uint32_t src, uint32_t dst,
    uint8_t tag)
{
	uint8_t	      p[64], r[128];
	struct pollfd pfd = { .fd = to->tun[1], .events = POLLIN };
	size_t	      n = ip4(p, src, dst, tag);
	ssize_t	      got;

	assert_int_equal(write(from->tun[1], p, n), (ssize_t)n);
	if (poll(&pfd, 1, 1000) != 1)
		return false;
	got = read(to->tun[1], r, sizeof(r));
	assert_int_equal(got, (ssize_t)n);
	assert_memory_equal(r, p, n);
	return true;
}

/* Waits (up to 1 s) for an engine counter to reach want. */
static uint64_t
counter(struct dp *dp, size_t off, uint64_t want)
{
	struct dp_stats st;
	uint64_t	v = 0;

	for (int i = 0; i < 100; i++) {
		dp_stats(dp, &st);
		memcpy(&v, (const char *)&st + off, sizeof(v));
		if (v >= want)
			break;
		usleep(10000);
	}
	return v;
}
#define COUNTER(dp, f, want) counter(dp, offsetof(struct dp_stats, f), want)

static void
test_roundtrip(void **state)
{
	struct dp_child_stats st;

	(void)state;
	install(0xa002, 0xb002, 5, 5, 0, 0);
	for (uint8_t i = 0; i < 10; i++) {
		assert_true(through(&ue, &n3, UE_INNER, DN_ADDR, i));
		assert_true(through(&n3, &ue, DN_ADDR, UE_INNER, i));
	}
	assert_int_equal(dp_child_stats(n3.dp, htonl(0xa002), &st), 0);
	assert_int_equal(st.in.packets, 10);
	assert_int_equal(st.out.packets, 10);
	/* GRE inside ESP: 8 bytes more than the 64-byte inner packet. */
	assert_int_equal(st.in.bytes, 10 * (64 + GRE_HDR_LEN));
	assert_true(st.routed);
	assert_int_equal(dp_child_stats(ue.dp, htonl(0xb002), &st), 0);
	assert_int_equal(st.in.packets, 10);
	assert_int_equal(COUNTER(n3.dp, in_packets, 10), 10);
	assert_int_equal(COUNTER(ue.dp, out_packets, 10), 10);
	/* No route at the N3IWF for an address no UE has. */
	assert_false(through(&n3, &ue, DN_ADDR, UE_INNER + 1, 0));
	assert_int_equal(COUNTER(n3.dp, no_route, 1), 1);
}

/* rfc7296 (no GRE): IPv4 goes through; IPv6 is outside the Child SA's
 * TS (IPv4) and is not sent (charon drops it by policy). */
static void
test_plain_ipv6(void **state)
{
	uint8_t	      p[64];
	struct pollfd pfd = { .fd = n3.tun[1], .events = POLLIN };

	(void)state;
	plain_ip = true;
	install(0xa004, 0xb004, 0, 0, 0, 0);
	plain_ip = false;
	assert_true(through(&ue, &n3, UE_INNER, DN_ADDR, 1));
	assert_true(through(&n3, &ue, DN_ADDR, UE_INNER, 2));
	memset(p, 0, sizeof(p));
	p[0] = 0x60;
	p[5] = 24; /* payload length */
	p[6] = 17;
	p[7] = 64;
	assert_int_equal(write(ue.tun[1], p, sizeof(p)), (ssize_t)sizeof(p));
	assert_int_equal(COUNTER(ue.dp, no_route, 1), 1);
	assert_int_equal(poll(&pfd, 1, 200), 0);
	assert_int_equal(COUNTER(ue.dp, out_packets, 1), 1);
}

static void
test_selector_qfi(void **state)
{
	(void)state;
	install(0xa002, 0xb002, 5, 6, 0, 0);
	/* QFI 5 sent, 6 required. */
	assert_false(through(&ue, &n3, UE_INNER, DN_ADDR, 1));
	assert_int_equal(COUNTER(n3.dp, qfi_bad, 1), 1);
	/* Now a source that is not the UE's inner address. */
	assert_int_equal(dp_child_del(n3.dp, htonl(0xa002)), 0);
	assert_int_equal(dp_child_del(ue.dp, htonl(0xb002)), 0);
	install(0xa003, 0xb003, 5, 5, 0, 0);
	assert_false(through(&ue, &n3, UE_INNER + 7, DN_ADDR, 2));
	assert_int_equal(COUNTER(n3.dp, selector, 1), 1);
	assert_true(through(&ue, &n3, UE_INNER, DN_ADDR, 3));
}

static void
test_rekey(void **state)
{
	struct dp_child_stats st;
	struct dp_child	      c;
	char		      err[256];

	(void)state;
	install(0xa002, 0xb002, 5, 5, 0, 0);
	assert_true(through(&ue, &n3, UE_INNER, DN_ADDR, 1));
	/* The UE first (new pair 0xa012 / 0xb012): the N3IWF still sends
	 * on the old SA, which the UE still accepts. */
	ue_pair(&c, 0xb012, 0xa012);
	assert_int_equal(dp_child_rekey(ue.dp, htonl(0xb002), &c, err,
			     sizeof(err)),
	    0);
	assert_true(through(&n3, &ue, DN_ADDR, UE_INNER, 2));
	/* Then the N3IWF; now both directions use the new pair. */
	c.in = sa(0xa012, false);
	c.out = sa(0xb012, true);
	c.peer = ue.net.ike_addr;
	assert_int_equal(dp_child_rekey(n3.dp, htonl(0xa002), &c, err,
			     sizeof(err)),
	    0);
	assert_true(through(&ue, &n3, UE_INNER, DN_ADDR, 3));
	assert_true(through(&n3, &ue, DN_ADDR, UE_INNER, 4));
	assert_int_equal(dp_child_stats(ue.dp, htonl(0xb002), &st), 0);
	assert_false(st.routed);
	assert_int_equal(st.out.packets, 1); /* before the rekey */
	assert_int_equal(st.in.packets, 1);  /* after the UE's rekey */
	assert_int_equal(dp_child_stats(ue.dp, htonl(0xb012), &st), 0);
	assert_true(st.routed);
	assert_int_equal(st.out.packets, 1);
	assert_int_equal(st.in.packets, 1);
	/* Delete the old pairs; traffic goes on; the old SPI is unknown. */
	assert_int_equal(dp_child_del(ue.dp, htonl(0xb002)), 0);
	assert_int_equal(dp_child_del(n3.dp, htonl(0xa002)), 0);
	assert_int_equal(dp_child_del(n3.dp, htonl(0xa002)), -1);
	assert_int_equal(dp_child_stats(ue.dp, htonl(0xb002), &st), -1);
	assert_true(through(&ue, &n3, UE_INNER, DN_ADDR, 5));
	assert_true(through(&n3, &ue, DN_ADDR, UE_INNER, 6));
}

/*
 * A hard packet limit (3): the engine reports the pair once at each end
 * (the UE's outbound SA and the N3IWF's inbound SA reached it), refuses
 * the next packet (out_expired); unrouted, the pair sends nothing more
 * (no_route) but still takes inbound packets; deleted, the count is 0.
 */
static void
test_hard(void **state)
{
	struct dp_child_stats st;
	uint32_t	      spi[4];

	(void)state;
	life.hard_packets = 3;
	install(0xa005, 0xb005, 5, 5, 0, 0);
	memset(&life, 0, sizeof(life));
	assert_int_equal(dp_child_count(ue.dp), 1);
	assert_int_equal(dp_expired(ue.dp, spi, 4), 0);
	for (uint8_t i = 0; i < 3; i++)
		assert_true(through(&ue, &n3, UE_INNER, DN_ADDR, i));
	assert_int_equal(dp_child_stats(ue.dp, htonl(0xb005), &st), 0);
	assert_true(st.hard);
	assert_false(st.soft);
	assert_int_equal(dp_expired(ue.dp, spi, 4), 1);
	assert_int_equal(spi[0], htonl(0xb005));
	assert_int_equal(dp_expired(ue.dp, spi, 4), 0); /* once */
	assert_int_equal(dp_expired(n3.dp, spi, 4), 1);
	assert_int_equal(spi[0], htonl(0xa005));
	assert_int_equal(dp_expired(n3.dp, spi, 4), 0);
	assert_false(through(&ue, &n3, UE_INNER, DN_ADDR, 4));
	assert_int_equal(COUNTER(ue.dp, out_expired, 1), 1);
	assert_int_equal(dp_child_unroute(ue.dp, htonl(0xb005)), 0);
	assert_false(through(&ue, &n3, UE_INNER, DN_ADDR, 5));
	assert_int_equal(COUNTER(ue.dp, no_route, 1), 1);
	assert_int_equal(COUNTER(ue.dp, out_expired, 1), 1);
	assert_int_equal(dp_child_stats(ue.dp, htonl(0xb005), &st), 0);
	assert_false(st.routed);
	assert_true(through(&n3, &ue, DN_ADDR, UE_INNER, 6));
	assert_int_equal(dp_child_del(ue.dp, htonl(0xb005)), 0);
	assert_int_equal(dp_child_count(ue.dp), 0);
	assert_int_equal(dp_child_unroute(ue.dp, htonl(0xb005)), -1);
	assert_int_equal(dp_expired(ue.dp, spi, 4), 0);
}

/* The outbound sequence space used up (ESP_E_SEQ) is a hard end too. */
static void
test_seq_end(void **state)
{
	struct dp_child c;
	uint32_t	spi[2];
	char		err[256];

	(void)state;
	ue_pair(&c, 0xb006, 0xa006);
	esp_sa_test_set_seq(c.out, UINT64_MAX - 1);
	assert_int_equal(dp_child_add(ue.dp, &c, err, sizeof(err)), 0);
	assert_int_equal(dp_expired(ue.dp, spi, 2), 0);
	/* the last number goes out (n3 has no SA: counted there) */
	assert_false(through(&ue, &n3, UE_INNER, DN_ADDR, 1));
	assert_int_equal(COUNTER(ue.dp, out_packets, 1), 1);
	assert_int_equal(dp_expired(ue.dp, spi, 2), 1);
	assert_int_equal(spi[0], htonl(0xb006));
	assert_false(through(&ue, &n3, UE_INNER, DN_ADDR, 2));
	assert_int_equal(COUNTER(ue.dp, out_expired, 1), 1);
	assert_int_equal(dp_expired(ue.dp, spi, 2), 0);
}

static void
test_demux(void **state)
{
	static struct ike_pkt  p;
	uint8_t		       m[4 + 28] = { 0 };
	uint8_t		       esp[16] = { 0, 0, 0xde, 0xad, 0, 0, 0, 1 };
	struct sockaddr_in     me = { .sin_family = AF_INET };
	socklen_t	       sl = sizeof(me);
	int		       fd = socket(AF_INET, SOCK_DGRAM, 0);
	const struct sockaddr *to = (const struct sockaddr *)&ue.net.ike_addr;

	(void)state;
	me.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&me, sizeof(me)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&me, &sl), 0);
	/* The UE's socket takes the marker from the N3IWF's NAT-T port:
	 * this sender plays that port. */
	ue.net.natt_peer_port = ntohs(me.sin_port);
	m[4 + 17] = 0x20; /* IKEv2 version byte */
	assert_int_equal(sendto(fd, m, sizeof(m), 0, to,
			     sizeof(ue.net.ike_addr)),
	    (ssize_t)sizeof(m));
	assert_int_equal(sendto(fd, esp, sizeof(esp), 0, to,
			     sizeof(ue.net.ike_addr)),
	    (ssize_t)sizeof(esp));
	assert_int_equal(ike_net_recv(&ue.net, 1000, &p), 1);
	assert_int_equal(p.len, 28); /* the marker stripped */
	assert_int_equal(p.natt, 1);
	/* The ESP one went to the engine (unknown SPI), not to IKE. */
	assert_int_equal(COUNTER(ue.dp, no_sa, 1), 1);
	assert_int_equal(COUNTER(ue.dp, nonesp, 0), 0);
	assert_int_equal(ike_net_recv(&ue.net, 200, &p), 0);
	close(fd);
}

static void
test_refused(void **state)
{
	struct dp_cfg	   c = { 0 };
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t	   sl = sizeof(a);
	char		   err[256];
	int		   fd = socket(AF_INET, SOCK_DGRAM, 0), sp[2];

	(void)state;
	/* An IKE socket without SO_REUSEPORT: the engine cannot join. */
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &sl), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM, 0, sp), 0);
	c.tun_fd = sp[0];
	c.local = a;
	assert_null(dp_new(&c, err, sizeof(err)));
	assert_non_null(strstr(err, "cannot bind"));
	close(fd);
	close(sp[0]);
	close(sp[1]);
}

static void
test_map(void **state)
{
	struct dp_map m;
	static char   vals[64];
	void	     *ref[64] = { 0 };

	(void)state;
	assert_int_equal(dp_map_init(&m, 40), 0); /* 128 slots, busy */
	srand(7);
	for (int i = 0; i < 20000; i++) {
		uint64_t k = (uint64_t)(rand() % 64);
		void	*v = &vals[k];

		if (rand() % 2) {
			if (ref[k] == NULL && rand() % 3 == 0)
				continue; /* keep it under 40 entries mostly */
			assert_ptr_equal(dp_map_put(&m, k * 0x10000, v),
			    ref[k]);
			ref[k] = v;
		} else {
			assert_ptr_equal(dp_map_del(&m, k * 0x10000), ref[k]);
			ref[k] = NULL;
		}
		for (uint64_t j = 0; j < 64; j++)
			assert_ptr_equal(dp_map_get(&m, j * 0x10000), ref[j]);
	}
	dp_map_free(&m);
}

int
main(void)
{
	const struct CMUnitTest t[] = {
		cmocka_unit_test_setup_teardown(test_roundtrip, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_selector_qfi, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_plain_ipv6, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_rekey, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hard, setup, teardown),
		cmocka_unit_test_setup_teardown(test_seq_end, setup, teardown),
		cmocka_unit_test_setup_teardown(test_demux, setup, teardown),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_map),
	};

	log_init("test_dp", LOG_ERR);
	return cmocka_run_group_tests(t, NULL, NULL);
}

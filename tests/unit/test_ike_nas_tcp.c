/*
 * NAS over TCP on loopback, with real sockets: the UE end (ike/nas_ue.c)
 * and the N3IWF end (ike/nas_n3iwf.c) run Registration Accept/Complete
 * and the PDU session establishment over TCP on 127.0.0.1 after a 5G-AKA
 * run in memory (usim <-> amf). Checked: the AMF's "create the user-plane
 * Child SA" call comes with the QFI and the UE's address, the Accept
 * reaches the UE only after nas_n3iwf_child_done(), both ends agree on
 * QFI and address; a failed Child SA gives a Reject; connections from an
 * unknown address, oversized, zero-length, truncated and garbage
 * envelopes are closed by the N3IWF and counted. NAS_TCP_TEST_PORT sets
 * the N3IWF's port (default: any), NAS_TCP_TEST_CIPHERING=ea0 the AMF's
 * NAS ciphering (default: its own, 128-NEA2), for
 * tests/integ/test_nas_tcp.sh, which captures this run and decodes it
 * with tshark.
 */
#include <sys/socket.h>

#include <netinet/in.h>

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/log.h"
#include "ike/amf.h"
#include "ike/nas.h"
#include "ike/nas_n3iwf.h"
#include "ike/nas_ue.h"
#include "ike/usim.h"

#define QFI 9
#define PSI 5

struct ctx {
	int		     child_calls;
	void		    *child_ue;
	struct amf_pdu_setup setup;
	int		     up_calls;
	bool		     up_ok;
	struct nas_sm	     acc;
};

static void
on_child(void *arg, void *ue, const struct amf_pdu_setup *s)
{
	struct ctx *c = arg;

	c->child_calls++;
	c->child_ue = ue;
	c->setup = *s;
}

static void
on_up(void *arg, const struct nas_sm *acc)
{
	struct ctx *c = arg;

	c->up_calls++;
	c->up_ok = acc != NULL;
	if (acc != NULL)
		c->acc = *acc;
}

/* 5G-AKA and Security Mode in memory, as EAP-5G carries them; *reg_accept
 * gets the Registration Accept the AMF gives at the end. */
static void
register_in_memory(struct amf *amf, struct usim *ue, struct buf *reg_accept)
{
	struct buf up, down;

	buf_init(&up, 4096);
	buf_init(&down, 4096);
	assert_int_equal(usim_start(ue, &up), 0);
	for (int i = 0; i < 5 && !amf_auth_done(amf); i++) {
		buf_reset(&down);
		assert_int_equal(amf_handle(amf, up.data, up.len, &down), 0);
		if (amf_auth_done(amf))
			break;
		buf_reset(&up);
		assert_int_equal(usim_handle(ue, down.data, down.len, &up), 0);
	}
	assert_true(amf_auth_done(amf) && usim_auth_done(ue));
	assert_false(amf_registered(amf));
	assert_true(down.len > 0);
	assert_int_equal(buf_add(reg_accept, down.data, down.len), 0);
	buf_free(&up);
	buf_free(&down);
}

static double
now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* Polls both ends' fds and steps them for up to ms, or until *flag. */
static void
run(struct nas_n3iwf *n3, struct nas_ue *ue, int ms, const int *flag)
{
	double end = now_ms() + ms;

	while (now_ms() < end && (flag == NULL || *flag == 0)) {
		struct pollfd p[2] = { { nas_n3iwf_fd(n3), POLLIN, 0 },
			{ ue != NULL ? nas_ue_fd(ue) : -1, POLLIN, 0 } };

		(void)poll(p, 2, 10);
		nas_n3iwf_step(n3);
		if (ue != NULL)
			nas_ue_step(ue);
	}
}

static struct nas_n3iwf *
n3_open(struct ctx *c)
{
	struct nas_n3iwf_cfg cfg = { .ip = "127.0.0.1",
		.port = 0,
		.qfi = QFI,
		.child = on_child,
		.arg = c };
	const char	    *port = getenv("NAS_TCP_TEST_PORT");
	struct nas_n3iwf    *n3;
	char		     err[128] = "";

	if (port != NULL)
		cfg.port = (uint16_t)atoi(port);
	n3 = nas_n3iwf_open(&cfg, err, sizeof(err));
	assert_non_null(n3);
	assert_true(nas_n3iwf_port(n3) != 0);
	return n3;
}

/* One UE at inner address 127.0.0.X through the whole NAS/TCP flow; the
 * user-plane Child SA comes up (or fails, child_ok false). */
static void
flow(struct nas_n3iwf *n3, struct ctx *c, uint8_t x, bool child_ok)
{
	struct amf_sub	  sub;
	struct amf	 *amf;
	struct usim	 *us;
	struct nas_ue	 *ue;
	struct buf	  acc;
	struct nas_sm	  sm;
	const uint8_t	 *reg;
	size_t		  reg_len;
	char		  inner[16], err[128] = "";
	const uint8_t	  ip[4] = { 127, 0, 0, x };
	const char	 *cipher = getenv("NAS_TCP_TEST_CIPHERING");
	int		  ueh = x; /* the caller's handle of this UE */
	struct nas_ue_cfg cfg = { .inner_ip = inner,
		.nas_ip = "127.0.0.1",
		.nas_port = nas_n3iwf_port(n3),
		.psi = PSI,
		.dnn = "internet",
		.up = on_up,
		.arg = c };

	snprintf(inner, sizeof(inner), "127.0.0.%u", x);
	memset(c, 0, sizeof(*c));
	amf_sub_default(&sub);
	assert_non_null(amf = amf_new(&sub));
	if (cipher != NULL && strcmp(cipher, "ea0") == 0)
		amf_set_ciphering(amf, NAS_ALG_EA0);
	assert_non_null(us = usim_new(&sub));
	buf_init(&acc, 4096);
	register_in_memory(amf, us, &acc);
	/* the AMF keeps the Registration Accept for NAS/TCP */
	assert_non_null(reg = amf_reg_accept(amf, &reg_len));
	assert_int_equal(reg_len, acc.len);
	assert_memory_equal(reg, acc.data, reg_len);
	assert_int_equal(nas_n3iwf_ue_add(n3, ip, amf, &ueh), 0);
	assert_int_equal(nas_n3iwf_ue_add(n3, ip, amf, &c),
	    -1); /* one per address */
	assert_non_null(ue = nas_ue_open(&cfg, us, err, sizeof(err)));
	run(n3, ue, 3000, &c->child_calls);
	/* the AMF asked for the user-plane Child SA of this UE */
	assert_int_equal(c->child_calls, 1);
	assert_ptr_equal(c->child_ue, &ueh);
	assert_int_equal(c->setup.psi, PSI);
	assert_int_equal(c->setup.qfi, QFI);
	assert_memory_equal(c->setup.addr, ip, 4);
	assert_true(amf_registered(amf) && usim_registered(us));
	/* no Accept while the Child SA is not up */
	run(n3, ue, 150, NULL);
	assert_int_equal(c->up_calls, 0);
	assert_false(nas_ue_session(ue, NULL));
	assert_false(amf_pdu_up(amf));
	assert_int_equal(nas_n3iwf_child_done(n3, &ueh, PSI + 1, true), -1);
	assert_int_equal(nas_n3iwf_child_done(n3, &ueh, PSI, child_ok), 0);
	run(n3, ue, 3000, &c->up_calls);
	assert_int_equal(c->up_calls, 1);
	assert_int_equal(c->up_ok, child_ok);
	assert_int_equal(nas_ue_session(ue, &sm), child_ok);
	assert_int_equal(nas_ue_failed(ue), !child_ok);
	assert_int_equal(amf_pdu_up(amf), child_ok);
	if (child_ok) { /* both ends agree, from their own state */
		assert_int_equal(sm.qfi, QFI);
		assert_int_equal(sm.psi, PSI);
		assert_memory_equal(sm.addr, ip, 4);
		assert_memory_equal(c->acc.addr, ip, 4);
		assert_true(usim_pdu_session(us, &sm) && sm.qfi == QFI);
	} else
		assert_true(usim_pdu_rejected(us));
	nas_ue_close(ue);
	nas_n3iwf_ue_del(n3, &ueh);
	assert_int_equal(nas_n3iwf_child_done(n3, &ueh, PSI, true), -1);
	buf_free(&acc);
	amf_free(amf);
	usim_free(us);
}

static void
test_nas_tcp_session(void **state)
{
	struct ctx	       c;
	struct nas_n3iwf      *n3 = n3_open(&c);
	struct nas_n3iwf_stats st;

	flow(n3, &c, 2, true);
	nas_n3iwf_get_stats(n3, &st);
	assert_int_equal(st.conns, 1);
	assert_int_equal(st.msgs_in, 2);  /* Registration Complete, PDU req */
	assert_int_equal(st.msgs_out, 2); /* Registration Accept, PDU accept */
	assert_int_equal(st.sessions, 1);
	assert_int_equal(st.bad_frame + st.bad_nas + st.truncated, 0);
	/* a second UE whose Child SA fails: Reject, the UE ends without */
	flow(n3, &c, 6, false);
	nas_n3iwf_get_stats(n3, &st);
	assert_int_equal(st.conns, 2);
	assert_int_equal(st.sessions, 1);
	nas_n3iwf_close(n3);
}

/* A raw client from 127.0.0.X sends bytes (then half-closes if eof) and
 * must see the N3IWF close the connection. */
static void
raw_client(struct nas_n3iwf *n3, uint8_t x, const void *p, size_t n, bool eof)
{
	struct sockaddr_in src = { .sin_family = AF_INET },
			   dst = { .sin_family = AF_INET };
	char	b[64];
	ssize_t r = -1;
	int	fd;
	double	end = now_ms() + 3000;

	src.sin_addr.s_addr = htonl(0x7f000000u | x);
	dst.sin_addr.s_addr = htonl(0x7f000001u);
	dst.sin_port = htons(nas_n3iwf_port(n3));
	assert_true((fd = socket(AF_INET, SOCK_STREAM, 0)) != -1);
	assert_int_equal(bind(fd, (struct sockaddr *)&src, sizeof(src)), 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&dst, sizeof(dst)), 0);
	run(n3, NULL, 50, NULL);
	if (n > 0)
		assert_int_equal(send(fd, p, n, MSG_NOSIGNAL), (ssize_t)n);
	if (eof)
		shutdown(fd, SHUT_WR);
	while (now_ms() < end) {
		run(n3, NULL, 20, NULL);
		r = recv(fd, b, sizeof(b), MSG_DONTWAIT);
		if (r >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
			break;
	}
	assert_true(r == 0 || (r == -1 && errno == ECONNRESET)); /* closed */
	close(fd);
}

static void
test_nas_tcp_bad_peers(void **state)
{
	struct ctx	       c;
	struct nas_n3iwf      *n3 = n3_open(&c);
	struct nas_n3iwf_stats st;
	struct amf_sub	       sub;
	struct amf	      *amf;
	const uint8_t	       ip[4] = { 127, 0, 0, 3 };
	int		       ueh;
	static uint8_t	       big[2 + 5000];
	const uint8_t	       garbage[] = { 0x00, 0x05, 1, 2, 3, 4, 5 };
	const uint8_t	       trunc[] = { 0x00, 0x10, 0x7e, 0x00, 0x67 };

	amf_sub_default(&sub);
	assert_non_null(amf = amf_new(&sub));
	assert_null(amf_reg_accept(amf, &(size_t){ 0 })); /* not registered */
	assert_int_equal(nas_n3iwf_ue_add(n3, ip, amf, &ueh), 0);
	raw_client(n3, 9, NULL, 0, false); /* nobody has 127.0.0.9 */
	big[0] = 5000 >> 8;
	big[1] = 5000 & 0xff;
	raw_client(n3, 3, big, sizeof(big), false); /* over the maximum */
	raw_client(n3, 3, "\0\0", 2, false);	    /* length 0 */
	raw_client(n3, 3, garbage, sizeof(garbage), false);
	raw_client(n3, 3, trunc, sizeof(trunc), true);
	nas_n3iwf_get_stats(n3, &st);
	assert_int_equal(st.unknown_src, 1);
	assert_int_equal(st.conns, 4);
	assert_int_equal(st.bad_frame, 2);
	assert_int_equal(st.bad_nas, 1);
	assert_int_equal(st.truncated, 1);
	assert_int_equal(st.msgs_in, 1); /* only the garbage was whole */
	assert_int_equal(st.sessions, 0);
	nas_n3iwf_close(n3);
	amf_free(amf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nas_tcp_session),
		cmocka_unit_test(test_nas_tcp_bad_peers),
	};

	log_init("test_ike_nas_tcp", LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

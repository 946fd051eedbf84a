/*
 * esp-bench: single-thread throughput of ike/esp.c, encapsulation and
 * decapsulation, for both transforms at a few inner packet sizes.
 *
 *   esp-bench [-d SECONDS] [-r RUNS] [-s SIZE,...]
 *
 * Each cell runs -d seconds (default 1) -r times (default 3) and prints
 * the median run: packets/s, Gbit/s of inner bytes and ns per packet per
 * second of the thread's CPU time (CLOCK_THREAD_CPUTIME_ID: what one core
 * does, not counting time the scheduler gave to other processes on a
 * shared machine), and packets/s by the wall clock beside it.
 * Encap writes into one output buffer. Decap works on a ring of packets
 * made beforehand, each copied into a work buffer first (decap is in
 * place; the copy is part of the figure, as a receive path copies out of
 * its ring too); when the ring is used up the inbound window is reset
 * with esp_sa_test_set_seq() so the same packets are accepted again.
 * Keys are fixed bytes: this measures speed, nothing is protected.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "ike/esp.h"

#define RING	 4096
#define MAX_SIZE 9000

struct cell {
	double pps, gbps, ns, wall_pps;
};

/* Start and end of a measurement: wall and thread CPU clocks. */
struct span {
	uint64_t wall, cpu;
};

static uint64_t
cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static struct span
span_now(void)
{
	return (struct span){ time_mono_ns(), cpu_ns() };
}

static uint8_t k_enc[36], k_integ[32];

static struct esp_sa *
sa_make(enum esp_alg alg, bool outbound)
{
	struct esp_sa_cfg c = {
		.spi = 0x01020304,
		.alg = alg,
		.esn = true,
		.outbound = outbound,
		.enc_key = k_enc,
		.enc_len = alg == ESP_AES_GCM_256 ? 36 : 32,
		.integ_key = alg == ESP_AES_GCM_256 ? NULL : k_integ,
		.integ_len = alg == ESP_AES_GCM_256 ? 0 : 32,
	};
	char	       err[200];
	struct esp_sa *sa = esp_sa_new(&c, err, sizeof(err));

	if (sa == NULL) {
		fprintf(stderr, "esp-bench: %s\n", err);
		exit(1);
	}
	return sa;
}

static struct cell
cell_of(uint64_t n, size_t size, struct span t0)
{
	struct span t1 = span_now();
	uint64_t    ns = t1.cpu - t0.cpu;
	struct cell c;

	c.pps = (double)n * 1e9 / (double)ns;
	c.gbps = c.pps * (double)size * 8 / 1e9;
	c.ns = (double)ns / (double)n;
	c.wall_pps = (double)n * 1e9 / (double)(t1.wall - t0.wall);
	return c;
}

static struct cell
run_encap(struct esp_sa *o, size_t size, double secs)
{
	static uint8_t in[MAX_SIZE], out[MAX_SIZE + ESP_MAX_OVERHEAD];
	struct span    t0 = span_now();
	uint64_t       end = t0.wall + (uint64_t)(secs * 1e9), n = 0;
	size_t	       len;

	memset(in, 0x45, size);
	do {
		for (int i = 0; i < 256; i++, n++)
			if (esp_encap(o, in, size, ESP_NH_IPV4, out,
				sizeof(out), &len) != ESP_OK) {
				fprintf(stderr, "esp-bench: encap failed\n");
				exit(1);
			}
	} while (time_mono_ns() < end);
	return cell_of(n, size, t0);
}

struct ring {
	uint8_t *pkt;
	size_t	 stride, len[RING];
};

static void
ring_fill(struct ring *r, enum esp_alg alg, size_t size)
{
	struct esp_sa *o = sa_make(alg, true);
	uint8_t	       in[MAX_SIZE];

	memset(in, 0x45, size);
	r->stride = size + ESP_MAX_OVERHEAD;
	if ((r->pkt = malloc(RING * r->stride)) == NULL)
		exit(1);
	for (size_t i = 0; i < RING; i++)
		if (esp_encap(o, in, size, ESP_NH_IPV4, r->pkt + i * r->stride,
			r->stride, &r->len[i]) != ESP_OK)
			exit(1);
	esp_sa_free(o);
}

static struct cell
run_decap(struct esp_sa *in, const struct ring *r, size_t size, double secs)
{
	static uint8_t work[MAX_SIZE + ESP_MAX_OVERHEAD];
	struct span    t0 = span_now();
	uint64_t       end = t0.wall + (uint64_t)(secs * 1e9), n = 0;
	size_t	       off, ilen;
	uint8_t	       nh;

	do {
		esp_sa_test_set_seq(in, 0);
		for (size_t i = 0; i < RING; i++, n++) {
			memcpy(work, r->pkt + i * r->stride, r->len[i]);
			if (esp_decap(in, work, r->len[i], &off, &ilen, &nh) !=
				ESP_OK ||
			    ilen != size) {
				fprintf(stderr, "esp-bench: decap failed\n");
				exit(1);
			}
		}
	} while (time_mono_ns() < end);
	return cell_of(n, size, t0);
}

static int
cmp_pps(const void *a, const void *b)
{
	const struct cell *x = a, *y = b;

	return (x->pps > y->pps) - (x->pps < y->pps);
}

static void
print_row(const char *alg, const char *dir, size_t size, struct cell *c,
    int runs)
{
	qsort(c, (size_t)runs, sizeof(*c), cmp_pps);
	printf("| %s | %s | %zu | %.0f | %.2f | %.0f | %.0f |\n", alg, dir,
	    size, c[runs / 2].pps, c[runs / 2].gbps, c[runs / 2].ns,
	    c[runs / 2].wall_pps);
	fflush(stdout);
}

static void
bench_size(enum esp_alg alg, size_t size, double secs, int runs)
{
	const char    *name = alg == ESP_AES_GCM_256 ?
	       "AES-GCM-16-256" :
	       "AES-CBC-256/HMAC-SHA2-256-128";
	struct cell    c[16] = { { 0 } };
	struct ring    r;
	struct esp_sa *sa = sa_make(alg, true);

	for (int i = 0; i < runs; i++)
		c[i] = run_encap(sa, size, secs);
	esp_sa_free(sa);
	print_row(name, "encap", size, c, runs);
	ring_fill(&r, alg, size);
	sa = sa_make(alg, false);
	for (int i = 0; i < runs; i++)
		c[i] = run_decap(sa, &r, size, secs);
	esp_sa_free(sa);
	free(r.pkt);
	print_row(name, "decap", size, c, runs);
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: esp-bench [-d SECONDS] [-r RUNS (1-15)] "
	    "[-s SIZE,...]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	double secs = 1;
	int    runs = 3, ch, nsizes = 0;
	size_t sizes[16];
	char   def[] = "64,512,1400", *sl = NULL, *tok, *end, *save = NULL;

	while ((ch = getopt(argc, argv, "d:r:s:")) != -1) {
		switch (ch) {
		case 'd':
			secs = strtod(optarg, &end);
			if (*end != '\0' || !(secs > 0 && secs <= 60))
				usage();
			break;
		case 'r':
			runs = atoi(optarg);
			if (runs < 1 || runs > 15)
				usage();
			break;
		case 's': sl = optarg; break;
		default: usage();
		}
	}
	for (tok = strtok_r(sl != NULL ? sl : def, ",", &save);
	     tok != NULL && nsizes < 16; tok = strtok_r(NULL, ",", &save)) {
		unsigned long v = strtoul(tok, &end, 10);

		if (*end != '\0' || v == 0 || v > MAX_SIZE)
			usage();
		sizes[nsizes++] = v;
	}
	log_init("esp-bench", LOG_ERR);
	for (int i = 0; i < 36; i++)
		k_enc[i] = (uint8_t)i;
	memset(k_integ, 0x77, sizeof(k_integ));
	printf("| transform | direction | inner bytes | packets/s | Gbit/s "
	       "| ns/packet | wall packets/s |\n"
	       "|---|---|---|---|---|---|---|\n");
	for (int a = 0; a < 2; a++)
		for (int i = 0; i < nsizes; i++)
			bench_size(a, sizes[i], secs, runs);
	return 0;
}

/*
 * tcpsink: both ends of an end-to-end TCP content check (issue 10 tests).
 *
 *   tcpsink -l ADDR:PORT [-o FILE] [-n COUNT] [-r READY_FILE]
 *	server (the data network): accepts connections, reads each to EOF
 *	and writes one line per connection, "bytes=N sha256=HEX", to FILE
 *	(appended, flushed; default stdout); exits after COUNT connections
 *	(default: never). READY_FILE gets "port=N" once it listens.
 *   tcpsink -c ADDR:PORT -b BYTES [-m MARKER] [-s SEED]
 *	client (the UE): sends BYTES bytes of deterministic pseudo-random
 *	data (splitmix64 from SEED, default 1) with MARKER (default
 *	QKD-IPSEC-PLAINTEXT-MARKER) written at the start of every 4 KiB
 *	block, then prints the same "bytes=N sha256=HEX" line.
 *   tcpsink -g -b BYTES [-m MARKER] [-s SEED]
 *	writes that data to stdout (to search for the marker, or hash it).
 *
 * Exit status 0 on success, 1 on a setup or I/O error (message on stderr).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SINK_BLOCK  4096
#define SINK_MARKER "QKD-IPSEC-PLAINTEXT-MARKER"

struct sink_opts {
	const char	  *listen, *connect, *out, *ready, *marker;
	unsigned long long bytes;
	unsigned long	   count;
	uint64_t	   seed;
	int		   gen;
};

static FILE	      *sink_out;
static pthread_mutex_t sink_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long   sink_done, sink_count;

static int
sink_addr(const char *s, struct sockaddr_in *sa)
{
	char	    host[64];
	const char *colon = strrchr(s, ':');
	char	   *end;
	long	    port;

	if (colon == NULL || (size_t)(colon - s) >= sizeof(host))
		return -1;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	port = strtol(colon + 1, &end, 10);
	if (*end != '\0' || port < 0 || port > 65535)
		return -1;
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -1;
}

static void
sink_hex(const unsigned char *md, char *hex)
{
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

static uint64_t
sink_next(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* One 4 KiB block of the stream: random words, the marker at its start. */
static void
sink_block(unsigned char *b, uint64_t *state, const char *marker)
{
	size_t ml = strlen(marker);

	for (size_t i = 0; i < SINK_BLOCK; i += 8) {
		uint64_t v = sink_next(state);
		memcpy(b + i, &v, 8);
	}
	memcpy(b, marker, ml < SINK_BLOCK ? ml : SINK_BLOCK);
}

static int
sink_write_all(int fd, const unsigned char *b, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, b, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Client and generator: the stream into fd, its digest printed. */
static int
sink_send(int fd, const struct sink_opts *o)
{
	unsigned char	   b[SINK_BLOCK], md[32];
	char		   hex[65];
	unsigned long long left = o->bytes;
	uint64_t	   state = o->seed;
	EVP_MD_CTX	  *c = EVP_MD_CTX_new();

	if (c == NULL || EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1)
		return -1;
	while (left > 0) {
		size_t n = left < SINK_BLOCK ? (size_t)left : SINK_BLOCK;
		sink_block(b, &state, o->marker);
		if (sink_write_all(fd, b, n) != 0) {
			fprintf(stderr, "tcpsink: write: %s\n",
			    strerror(errno));
			EVP_MD_CTX_free(c);
			return -1;
		}
		EVP_DigestUpdate(c, b, n);
		left -= n;
	}
	EVP_DigestFinal_ex(c, md, NULL);
	EVP_MD_CTX_free(c);
	sink_hex(md, hex);
	fprintf(o->gen ? stderr : stdout, "bytes=%llu sha256=%s\n", o->bytes,
	    hex);
	return 0;
}

static int
sink_client(const struct sink_opts *o)
{
	struct sockaddr_in sa;
	int		   fd, rc;

	if (sink_addr(o->connect, &sa) != 0) {
		fprintf(stderr, "tcpsink: bad address \"%s\"\n", o->connect);
		return -1;
	}
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		fprintf(stderr, "tcpsink: connect %s: %s\n", o->connect,
		    strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	rc = sink_send(fd, o);
	if (rc == 0 && shutdown(fd, SHUT_WR) == 0) {
		char x;
		/* wait for the server's close: everything was read */
		while (read(fd, &x, 1) > 0)
			;
	}
	close(fd);
	return rc;
}

/* Server: one connection, read to EOF, one line out. */
static void *
sink_conn(void *arg)
{
	int		   fd = (int)(intptr_t)arg;
	unsigned char	   b[65536], md[32];
	char		   hex[65];
	unsigned long long total = 0;
	EVP_MD_CTX	  *c = EVP_MD_CTX_new();
	ssize_t		   n;

	if (c == NULL || EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1) {
		close(fd);
		return NULL;
	}
	while ((n = read(fd, b, sizeof(b))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		EVP_DigestUpdate(c, b, (size_t)n);
		total += (unsigned long long)n;
	}
	EVP_DigestFinal_ex(c, md, NULL);
	EVP_MD_CTX_free(c);
	sink_hex(md, hex);
	close(fd);
	pthread_mutex_lock(&sink_lock);
	fprintf(sink_out, "bytes=%llu sha256=%s%s\n", total, hex,
	    n < 0 ? " error=read" : "");
	fflush(sink_out);
	sink_done++;
	if (sink_count > 0 && sink_done >= sink_count)
		exit(0);
	pthread_mutex_unlock(&sink_lock);
	return NULL;
}

static int
sink_listen(const struct sink_opts *o, int *lfd)
{
	struct sockaddr_in sa;
	socklen_t	   sl = sizeof(sa);
	int		   one = 1;
	FILE		  *r;

	if (sink_addr(o->listen, &sa) != 0) {
		fprintf(stderr, "tcpsink: bad address \"%s\"\n", o->listen);
		return -1;
	}
	*lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (*lfd < 0)
		return -1;
	setsockopt(*lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(*lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    listen(*lfd, 64) != 0 ||
	    getsockname(*lfd, (struct sockaddr *)&sa, &sl) != 0) {
		fprintf(stderr, "tcpsink: listen %s: %s\n", o->listen,
		    strerror(errno));
		return -1;
	}
	if (o->ready != NULL) {
		r = fopen(o->ready, "w");
		if (r == NULL) {
			fprintf(stderr, "tcpsink: %s: %s\n", o->ready,
			    strerror(errno));
			return -1;
		}
		fprintf(r, "port=%u\n", ntohs(sa.sin_port));
		fclose(r);
	}
	return 0;
}

static int
sink_server(const struct sink_opts *o)
{
	int lfd;

	sink_out = stdout;
	if (o->out != NULL && (sink_out = fopen(o->out, "a")) == NULL) {
		fprintf(stderr, "tcpsink: %s: %s\n", o->out, strerror(errno));
		return -1;
	}
	sink_count = o->count;
	if (sink_listen(o, &lfd) != 0)
		return -1;
	for (;;) {
		pthread_t t;
		int	  fd = accept(lfd, NULL, NULL);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			fprintf(stderr, "tcpsink: accept: %s\n",
			    strerror(errno));
			return -1;
		}
		if (pthread_create(&t, NULL, sink_conn, (void *)(intptr_t)fd) !=
		    0) {
			close(fd);
			continue;
		}
		pthread_detach(t);
	}
}

static void
sink_usage(void)
{
	fprintf(stderr,
	    "usage: tcpsink -l ADDR:PORT [-o FILE] [-n COUNT] [-r READY]\n"
	    "       tcpsink -c ADDR:PORT -b BYTES [-m MARKER] [-s SEED]\n"
	    "       tcpsink -g -b BYTES [-m MARKER] [-s SEED]\n");
	exit(1);
}

int
main(int argc, char **argv)
{
	struct sink_opts o = { .marker = SINK_MARKER, .seed = 1 };
	int		 c;

	while ((c = getopt(argc, argv, "l:c:o:n:r:b:m:s:g")) != -1) {
		switch (c) {
		case 'l': o.listen = optarg; break;
		case 'c': o.connect = optarg; break;
		case 'o': o.out = optarg; break;
		case 'r': o.ready = optarg; break;
		case 'm': o.marker = optarg; break;
		case 'n': o.count = strtoul(optarg, NULL, 10); break;
		case 'b': o.bytes = strtoull(optarg, NULL, 10); break;
		case 's': o.seed = strtoull(optarg, NULL, 10); break;
		case 'g': o.gen = 1; break;
		default: sink_usage();
		}
	}
	if (optind != argc ||
	    (o.listen != NULL) + (o.connect != NULL) + o.gen != 1)
		sink_usage();
	if (o.listen != NULL)
		return sink_server(&o) == 0 ? 0 : 1;
	if (o.gen)
		return sink_send(STDOUT_FILENO, &o) == 0 ? 0 : 1;
	return sink_client(&o) == 0 ? 0 : 1;
}

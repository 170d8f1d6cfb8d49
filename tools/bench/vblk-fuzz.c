// SPDX-License-Identifier: GPL-2.0
/*
 * vblk-fuzz: a fast, seeded fuzzer of /dev/vhost-blk that plays the guest
 * driver, the C twin of tests/guest/test_fuzz.py.
 *
 * Every chain is generated from the PRNG stream of (--seed, chain index)
 * alone, so chain N of a seed is the same chain in every mode and can be
 * sent again on its own (--replay SEED:N).  The expected answer to each
 * chain follows the rules of tools/vblk/oracle.py (expect() and _dwz()),
 * the single source of truth: --emit N prints the chains and this file's
 * answers as JSON lines, and tests/unit/test_cfuzz_oracle.py checks that
 * oracle.expect() agrees on every one.
 *
 * Modes:
 *   --emit N            no device: N chains and their expected answers
 *   (default)           request fuzzing on --dev through --vhost: valid
 *                       and hostile chains of every type on --queues
 *                       virtqueues served by --workers workers, --depth
 *                       requests in flight per queue; every completion
 *                       is checked (status, used length, untouched
 *                       buffers of a rejected request, read data against
 *                       a shadow of the first --region bytes of the disk,
 *                       the ID of GET_ID)
 *   --ring N            N broken rings (loops, indices past the ring,
 *                       addresses outside the memory table, nested and
 *                       odd-sized indirect tables, readable after
 *                       writable, a bad avail idx): each must get a used
 *                       entry or the error eventfd, never a hang; the
 *                       queue is reset after each
 *   --lifecycle         request fuzzing interleaved with SET_MEM_TABLE,
 *                       SET_VRING_*, SET_BACKEND (stop, restart, swap to
 *                       --dev2), workers, SET_FEATURES, RESET_OWNER and
 *                       close with requests in flight; ioctls must return
 *                       what Documentation/userspace-api/vhost-blk.rst
 *                       and vhost say, and requests in flight complete
 *   --replay SEED:N     chain N of SEED alone on a fresh device (with
 *                       --shrink: the smallest layout that still fails)
 *
 * It prints one JSON line: the summary (requests, seconds, rate, statuses,
 * mismatches, failures, seed); every failure is printed before it as a
 * JSON line with the chain and the command line that replays it.
 *
 * Build: gcc -O2 -Wall -Wextra -Werror -pthread -o vblk-fuzz vblk-fuzz.c vring.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vring.h"

#define SECTOR		512u
#define HDR_LEN		16u
#define DWZ_SEG_LEN	16u
#define DWZ_SEG_MAX	256u
#define MAX_BUFS	48
#define POISON		0xA5
#define STATUS_POISON	0xEE
#define SERIAL		"cfuzz-serial-01"
#define MAX_QUEUES	16

/* ---- options ------------------------------------------------------------------------- */

enum mode { M_FUZZ, M_EMIT, M_RING, M_LIFECYCLE, M_REPLAY };
enum fault { F_NONE, F_ERROR_WRITES, F_DROP_WRITES, F_BADBLOCKS, F_MAY_FAIL, F_POWER_OFF };

static struct {
	enum mode mode;
	const char *vhost;
	const char *dev;
	const char *dev2;
	unsigned int queues;
	unsigned int workers;
	unsigned int depth;	/* requests in flight per queue */
	unsigned int ring_num;
	uint64_t requests;
	double seconds;
	uint64_t seed;
	uint64_t first;		/* --emit: index of the first chain */
	uint64_t count;		/* --emit N, --ring N */
	uint64_t replay_index;
	bool shrink;
	unsigned int max_sectors;
	uint64_t region;	/* bytes shadowed from sector 0 */
	bool discard;		/* ack VIRTIO_BLK_F_DISCARD (if the backend can) */
	bool write_zeroes;
	bool read_only;		/* ack VIRTIO_BLK_F_RO */
	double stall;		/* seconds without a completion that count as a hang */
	unsigned int max_failures;
	bool verbose;
	/* --emit: the limits of a device that is not there */
	uint64_t capacity;
	unsigned int lbs;
	unsigned int max_discard_sectors, max_discard_seg;
	unsigned int max_wz_sectors, max_wz_seg;
	/* --fault: what the backend does wrong (see fault_adjust()) */
	int fault;
	uint64_t bad[16][2];	/* --fault badblocks=A-B,...: bad sectors A..B */
	unsigned int nbad;
	const char *fill_dev;	/* the initial data goes here (the device under a dm target) */
	const char *power_path;	/* --fault power-off=PATH@N: write 0 to PATH after N requests */
	uint64_t power_at;
} opt = {
	.vhost = "/dev/vhost-blk",
	.queues = 4,
	.workers = 2,
	.depth = 32,
	.ring_num = 512,
	.requests = 50000,
	.seed = 1,
	.max_sectors = 256,
	.region = 16u << 20,
	.discard = true,
	.write_zeroes = true,
	.stall = 60,
	.max_failures = 20,
	.capacity = 131072,
	.lbs = 512,
	.max_discard_seg = 256,
	.max_wz_seg = 256,
};

/* ---- output and failures ---------------------------------------------------------------- */

static uint64_t n_failures;
static char argv_line[1024];	/* the options that shape the chains, for replay lines */

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', f);
		fputc(*s >= ' ' ? *s : ' ', f);
	}
	fputc('"', f);
}

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

static void die(const char *fmt, ...)
{
	va_list ap;
	char msg[512];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	printf("{\"tool\": \"vblk-fuzz\", \"ok\": false, \"error\": ");
	json_str(stdout, msg);
	printf(", \"seed\": %" PRIu64 "}\n", opt.seed);
	fflush(stdout);
	fprintf(stderr, "vblk-fuzz: %s\n", msg);
	exit(2);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * A watchdog: an ioctl or a wait that does not return within its bound is a
 * hang, reported as a failure line and a summary before the process exits
 * (a blocked ioctl cannot be interrupted from here).
 */
static volatile uint64_t watch_deadline;
static char watch_what[256];

static void watch(const char *what, double seconds)
{
	snprintf(watch_what, sizeof(watch_what), "%s", what);
	__atomic_store_n(&watch_deadline, now_ns() + (uint64_t)(seconds * 1e9), __ATOMIC_RELEASE);
}

static void unwatch(void)
{
	__atomic_store_n(&watch_deadline, 0, __ATOMIC_RELEASE);
}

static void *watchdog(void *arg)
{
	(void)arg;
	for (;;) {
		uint64_t d = __atomic_load_n(&watch_deadline, __ATOMIC_ACQUIRE);

		if (d && now_ns() > d) {
			printf("{\"tool\": \"vblk-fuzz\", \"failure\": \"hang\", \"what\": ");
			json_str(stdout, watch_what);
			printf(", \"seed\": %" PRIu64 "}\n", opt.seed);
			printf("{\"tool\": \"vblk-fuzz\", \"ok\": false, \"error\": \"hang: ");
			printf("%s\", \"seed\": %" PRIu64 ", \"failures\": %" PRIu64 "}\n",
			       "see the failure line", opt.seed, n_failures + 1);
			fflush(stdout);
			_exit(3);
		}
		usleep(200000);
	}
	return NULL;
}

/* ---- PRNG: splitmix64, one stream per (seed, purpose, index) ------------------------------ */

struct rng {
	uint64_t s;
};

static uint64_t fmix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t rnd(struct rng *r)
{
	r->s += 0x9e3779b97f4a7c15ull;
	return fmix(r->s);
}

/* The stream of chain @index (purpose 0) or of anything else of the seed. */
static struct rng stream(uint64_t purpose, uint64_t index)
{
	struct rng r = { fmix(opt.seed ^ fmix(purpose * 0x632be59bd9b4e019ull ^ fmix(index + 1))) };

	return r;
}

static uint64_t below(struct rng *r, uint64_t n)
{
	return n ? rnd(r) % n : 0;
}

/* An integer in [lo, hi]. */
static uint64_t between(struct rng *r, uint64_t lo, uint64_t hi)
{
	if (hi <= lo)
		return lo;
	if (hi - lo == UINT64_MAX)
		return rnd(r);
	return lo + rnd(r) % (hi - lo + 1);
}

static bool chance(struct rng *r, unsigned int num, unsigned int den)
{
	return below(r, den) < num;
}

static void fill_random(struct rng *r, uint8_t *p, size_t n)
{
	while (n >= 8) {
		uint64_t v = rnd(r);

		memcpy(p, &v, 8);
		p += 8;
		n -= 8;
	}
	if (n) {
		uint64_t v = rnd(r);

		memcpy(p, &v, n);
	}
}

/* ---- limits and the oracle (tools/vblk/oracle.py) ----------------------------------------- */

struct limits {
	uint64_t capacity;
	uint32_t lbs;
	uint32_t max_discard_sectors;
	uint32_t max_discard_seg;
	uint32_t max_wz_sectors;
	uint32_t max_wz_seg;
	bool read_only;
};

enum { W_DATA, W_ZEROES, W_UNDEF };

struct wrange {
	uint64_t sector;
	uint64_t nbytes;
	uint32_t data_off;	/* W_DATA: offset of the data in the readable bytes */
	uint8_t kind;
};

/* What the device owes a chain (oracle.Expect). */
struct expect {
	int status;		/* -1: no writable byte, no status */
	uint32_t used_len;
	char why[112];
	unsigned int nwrites;
	struct wrange writes[DWZ_SEG_MAX];
	bool is_read;
	bool is_get_id;
	uint64_t read_sector;
	/* --fault (fault_adjust()): */
	bool by_fault;		/* the status is the fault's, not the oracle's */
	bool partial;		/* IOERR, and some of its writes may have landed */
	bool may_fail;		/* OK, or IOERR (its writes then unknown) */
	bool no_effect;		/* OK, and its writes do not reach the disk */
};

/* One descriptor's buffer: readable bytes at @roff of the chain's, or @len writable ones. */
struct gbuf {
	uint32_t len;
	uint32_t roff;
	uint32_t align;
	uint32_t phase;
	bool write;
};

struct chain {
	uint64_t index;
	unsigned int nbufs;
	struct gbuf bufs[MAX_BUFS];
	bool indirect;
	uint8_t *rbytes;	/* the readable bytes, header first (rmax of room) */
	uint32_t rlen;
	uint64_t wlen;
	char label[96];
};

static uint32_t rmax, wmax;	/* room for readable and writable bytes of one chain */

static uint32_t le32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static uint64_t le64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

static int expect_set(struct expect *e, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int expect_set(struct expect *e, int status, const char *fmt, ...)
{
	va_list ap;

	e->status = status;
	va_start(ap, fmt);
	vsnprintf(e->why, sizeof(e->why), fmt, ap);
	va_end(ap);
	return status;
}

/* oracle._check_range(): whole logical blocks, aligned, inside the capacity. */
static bool check_range(const struct limits *lim, uint64_t sector, uint64_t length)
{
	uint64_t lbs_sectors = lim->lbs / SECTOR;

	if (!length || length % lim->lbs || sector % lbs_sectors)
		return false;
	return sector <= lim->capacity && length / SECTOR <= lim->capacity - sector;
}

/* oracle._dwz() */
static void expect_dwz(const struct limits *lim, uint32_t type, const uint8_t *payload,
		       uint32_t plen, uint64_t in_len, struct expect *e)
{
	bool discard = type == BLK_T_DISCARD;
	const char *name = discard ? "discard" : "write zeroes";
	uint32_t max_sectors = discard ? lim->max_discard_sectors : lim->max_wz_sectors;
	uint32_t max_seg = discard ? lim->max_discard_seg : lim->max_wz_seg;
	uint64_t lbs_sectors = lim->lbs / SECTOR;

	if (!max_sectors) {
		expect_set(e, BLK_S_UNSUPP, "%s not offered", name);
		return;
	}
	if (in_len || !plen || plen % DWZ_SEG_LEN) {
		expect_set(e, BLK_S_IOERR, "%s: writable data or not whole segments", name);
		return;
	}
	if (plen / DWZ_SEG_LEN > (max_seg < DWZ_SEG_MAX ? max_seg : DWZ_SEG_MAX)) {
		expect_set(e, BLK_S_IOERR, "%s: too many segments", name);
		return;
	}
	e->nwrites = 0;
	for (uint32_t off = 0; off < plen; off += DWZ_SEG_LEN) {
		uint64_t sector = le64(payload + off);
		uint32_t num = le32(payload + off + 8);
		uint32_t flags = le32(payload + off + 12);
		uint32_t known = discard ? 0 : BLK_WZ_FLAG_UNMAP;

		/* The spec's UNSUPP for flags comes first, even on a read-only device. */
		if (flags & ~known) {
			e->nwrites = 0;
			expect_set(e, BLK_S_UNSUPP, "%s: flags %#x", name, flags);
			return;
		}
		if (lim->read_only) {
			e->nwrites = 0;
			expect_set(e, BLK_S_IOERR, "%s on a read-only backend", name);
			return;
		}
		/* An empty segment is valid (no minimum in 5.2.6.2) and does nothing. */
		if (num > max_sectors || (sector | num) % lbs_sectors) {
			e->nwrites = 0;
			expect_set(e, BLK_S_IOERR, "%s: segment %" PRIu64 "+%u too big or misaligned",
				   name, sector, num);
			return;
		}
		if (sector > lim->capacity || num > lim->capacity - sector) {
			e->nwrites = 0;
			expect_set(e, BLK_S_IOERR, "%s: segment %" PRIu64 "+%u past the capacity",
				   name, sector, num);
			return;
		}
		if (num)
			e->writes[e->nwrites++] = (struct wrange){
				sector, (uint64_t)num * SECTOR, 0, discard ? W_UNDEF : W_ZEROES };
	}
	expect_set(e, BLK_S_OK, "%s", name);
}

/* oracle.expect(): the answer to a chain; its layout never decides the status. */
static void expect_chain(const struct limits *lim, const struct chain *c, struct expect *e)
{
	uint64_t in_bytes = c->wlen, in_len;
	uint32_t type, plen;
	uint64_t sector;
	const uint8_t *payload;

	e->nwrites = 0;
	e->is_read = false;
	e->is_get_id = false;
	e->read_sector = 0;
	e->by_fault = e->partial = e->may_fail = e->no_effect = false;
	if (!in_bytes) {
		e->used_len = 0;
		expect_set(e, -1, "no writable byte for the status");
		return;
	}
	/* Every writable byte, whatever the status. */
	e->used_len = in_bytes > UINT32_MAX ? UINT32_MAX : (uint32_t)in_bytes;
	if (c->rlen < HDR_LEN) {
		expect_set(e, BLK_S_IOERR, "%u-byte header", c->rlen);
		return;
	}
	type = le32(c->rbytes);
	sector = le64(c->rbytes + 8);
	payload = c->rbytes + HDR_LEN;
	plen = c->rlen - HDR_LEN;
	in_len = in_bytes - 1;
	switch (type) {
	case BLK_T_IN:
		if (plen || !check_range(lim, sector, in_len)) {
			expect_set(e, BLK_S_IOERR, "read %" PRIu64 "@%" PRIu64
				   ": readable data or bad range", in_len, sector);
			return;
		}
		e->is_read = true;
		e->read_sector = sector;
		expect_set(e, BLK_S_OK, "read %" PRIu64 "@%" PRIu64, in_len, sector);
		return;
	case BLK_T_OUT:
		if (in_len || lim->read_only || !check_range(lim, sector, plen)) {
			expect_set(e, BLK_S_IOERR, "write %u@%" PRIu64 ": writable data, "
				   "read-only or bad range", plen, sector);
			return;
		}
		e->writes[0] = (struct wrange){ sector, plen, HDR_LEN, W_DATA };
		e->nwrites = 1;
		expect_set(e, BLK_S_OK, "write %u@%" PRIu64, plen, sector);
		return;
	case BLK_T_FLUSH:
		/* Data with a flush: the driver SHOULD NOT send it; not an error. */
		expect_set(e, BLK_S_OK, "flush");
		return;
	case BLK_T_GET_ID:
		if (plen || !in_len) {
			expect_set(e, BLK_S_IOERR, "get_id: readable data or no room");
			return;
		}
		e->is_get_id = true;
		expect_set(e, BLK_S_OK, "get_id");
		return;
	case BLK_T_DISCARD:
	case BLK_T_WRITE_ZEROES:
		expect_dwz(lim, type, payload, plen, in_len, e);
		return;
	default:
		expect_set(e, BLK_S_UNSUPP, "type %#x", type);
		return;
	}
}

/* ---- faults of the backend (--fault) -------------------------------------------------------- */

/*
 * What a request the oracle answers OK gets from a backend that fails on
 * purpose.  Only requests that reach the backend with sectors are
 * affected: reads and writes (never empty: the oracle refuses those),
 * discard and write zeroes with a nonempty segment.  Flushes are not:
 * the backends of the fault runs have no volatile cache, so the block
 * layer completes an empty flush before any driver sees it.
 *
 *   error-writes  dm-flakey, always down, error_writes: every write,
 *                 discard and write zeroes fails with IOERR before a byte
 *                 is written; reads are served.
 *   drop-writes   dm-flakey, always down, drop_writes: writes complete OK
 *                 and are thrown away; reads return what was there before.
 *   badblocks     null_blk with these bad sectors (and no merging): a
 *                 request touching one fails with IOERR; the sectors a
 *                 failed write spans are unknown (its other bios may have
 *                 landed), a failed read's buffers are not checked.
 *   may-fail      null_blk with timeout injection: any such request may
 *                 fail with IOERR (its writes then unknown); the others
 *                 get the oracle's answer.  The summary counts them.
 *   power-off     after --fault power-off=PATH@N: N requests checked, "0"
 *                 is written to PATH (null_blk's configfs power) with the
 *                 queues full; the requests in flight then may fail, every
 *                 one submitted after the write returned must.
 */
static bool power_started, power_off_done;

static bool touches_bad(uint64_t sector, uint64_t nbytes)
{
	uint64_t end = sector + (nbytes + SECTOR - 1) / SECTOR;

	for (unsigned int i = 0; i < opt.nbad; i++)
		if (sector <= opt.bad[i][1] && opt.bad[i][0] < end)
			return true;
	return false;
}

static void fault_adjust(struct expect *e, uint64_t in_len)
{
	bool bad = false;

	if (opt.fault == F_NONE || e->status != BLK_S_OK || (!e->is_read && !e->nwrites))
		return;
	switch (opt.fault) {
	case F_ERROR_WRITES:
		if (!e->nwrites)
			return;
		e->nwrites = 0;
		break;
	case F_DROP_WRITES:
		e->no_effect = e->nwrites > 0;
		return;
	case F_BADBLOCKS:
		if (e->is_read)
			bad = touches_bad(e->read_sector, in_len);
		for (unsigned int i = 0; i < e->nwrites; i++)
			bad = bad || touches_bad(e->writes[i].sector, e->writes[i].nbytes);
		if (!bad)
			return;
		e->partial = true;
		break;
	case F_MAY_FAIL:
		e->may_fail = true;
		return;
	case F_POWER_OFF:
		if (!power_off_done) {
			e->may_fail = true;
			return;
		}
		e->partial = true;
		break;
	}
	e->by_fault = true;
	e->status = BLK_S_IOERR;
	{
		size_t n = strlen(e->why);

		snprintf(e->why + n, sizeof(e->why) - n, " (failed by the fault)");
	}
}

/* ---- the chain generator (tests/guest/test_fuzz.py's strategies) ---------------------------- */

static const uint32_t types[] = { BLK_T_IN, BLK_T_OUT, BLK_T_FLUSH, BLK_T_GET_ID, BLK_T_DISCARD,
				  BLK_T_WRITE_ZEROES };
static const uint32_t odd_types[] = { 2, 5, 10, 14, 16, 24 };
static const uint32_t odd_sizes[] = { 0, 1, 2, 15, 16, 17, 20, 21, 511, 512, 513, 1023, 1024,
				      4095, 4096, 4097, 8192 };
#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static uint64_t region_sectors(const struct limits *lim)
{
	uint64_t r = opt.region / SECTOR;

	return r < lim->capacity ? r : lim->capacity;
}

static void add_buf(struct chain *c, bool write, uint32_t roff, uint32_t len, uint32_t align,
		    uint32_t phase)
{
	if (c->nbufs >= MAX_BUFS)
		return;
	c->bufs[c->nbufs++] = (struct gbuf){ .len = len, .roff = roff, .align = align,
					     .phase = phase, .write = write };
	if (write)
		c->wlen += len;
}

/* placement(): (align, phase) of a buffer, sector-aligned ones or anywhere. */
static void placement(struct rng *r, bool aligned, uint32_t *align, uint32_t *phase)
{
	if (aligned) {
		*align = chance(r, 1, 2) ? 512 : 4096;
		*phase = (uint32_t)below(r, *align / 512) * 512;
		return;
	}
	*align = (uint32_t[]){ 16, 512, 4096 }[below(r, 3)];
	*phase = chance(r, 1, 2) ? 0 : (uint32_t)below(r, *align);
}

/* cut(): @total split into at most @max_parts parts, multiples of @unit, in order. */
static unsigned int cut(struct rng *r, uint64_t total, uint32_t unit, unsigned int max_parts,
			uint32_t *parts)
{
	uint64_t units = total / unit, points[64];
	unsigned int n = 0, np = 0;

	if (units <= 1) {
		if (total)
			parts[n++] = (uint32_t)total;
		return n;
	}
	if (max_parts > 64)
		max_parts = 64;
	/* A set of distinct cut points in [1, units - 1], sorted. */
	for (unsigned int want = (unsigned int)below(r, max_parts); np < want; want--) {
		uint64_t p = between(r, 1, units - 1);
		unsigned int i = np;

		for (unsigned int j = 0; j < np; j++)
			if (points[j] == p)
				goto next;
		while (i && points[i - 1] > p) {
			points[i] = points[i - 1];
			i--;
		}
		points[i] = p;
		np++;
next:;
	}
	for (unsigned int i = 0; i <= np; i++) {
		uint64_t a = i ? points[i - 1] : 0, b = i < np ? points[i] : units;

		parts[n++] = (uint32_t)((b - a) * unit);
	}
	return n;
}

static uint32_t put_hdr(uint8_t *p, uint32_t type, uint32_t ioprio, uint64_t sector)
{
	memcpy(p, &type, 4);
	memcpy(p + 4, &ioprio, 4);
	memcpy(p + 8, &sector, 8);
	return HDR_LEN;
}

static uint32_t put_seg(uint8_t *p, uint64_t sector, uint32_t num, uint32_t flags)
{
	memcpy(p, &sector, 8);
	memcpy(p + 8, &num, 4);
	memcpy(p + 12, &flags, 4);
	return DWZ_SEG_LEN;
}

/* The header as 1 to 4 readable descriptors (header_cuts). */
static void header_bufs(struct rng *r, struct chain *c)
{
	uint32_t cuts[4];
	unsigned int n = 0;

	for (unsigned int want = (unsigned int)below(r, 4); want; want--) {
		uint32_t p = (uint32_t)between(r, 1, 15);
		unsigned int i = n;

		for (unsigned int j = 0; j < n; j++)
			if (cuts[j] == p)
				goto next;
		while (i && cuts[i - 1] > p) {
			cuts[i] = cuts[i - 1];
			i--;
		}
		cuts[i] = p;
		n++;
next:;
	}
	for (unsigned int i = 0; i <= n; i++) {
		uint32_t a = i ? cuts[i - 1] : 0, b = i < n ? cuts[i] : HDR_LEN;

		add_buf(c, false, a, b - a, 16, 0);
	}
}

/* valid_chain(): a request the device must complete with OK (mostly). */
static void gen_valid(struct rng *r, const struct limits *lim, struct chain *c)
{
	/*
	 * Reads and writes mostly; write zeroes less often: without a backend
	 * operation (null_blk, brd) it writes zero pages on one ordered
	 * workqueue per device, the slowest request there is under TCG.
	 */
	static const char *const kinds[] = { "read", "read", "read", "read", "read", "read",
					     "write", "write", "write", "write", "write", "write",
					     "flush", "flush", "get_id", "get_id", "write_zeroes",
					     "discard", "discard" };
	unsigned int nk = N_OF(kinds) - (lim->max_discard_sectors ? 0 : 2);
	const char *kind = kinds[below(r, nk)];
	uint64_t region = region_sectors(lim), lbs_s = lim->lbs / SECTOR;
	uint64_t nsect, sector;
	uint32_t align, phase, segs[64];
	unsigned int nsegs, max_parts;
	bool status_merged, header_merged = false;

	/* Mostly small: the rate is what the debug kernel under TCG copies and pins. */
	switch (below(r, 25)) {
	case 0: case 1:
		nsect = between(r, 1, opt.max_sectors);
		break;
	case 2: case 3: case 4: case 5: case 6:
		nsect = between(r, 1, 64);
		break;
	default:
		nsect = between(r, 1, 8);
	}
	/* Mostly whole logical blocks at aligned sectors; sometimes not. */
	if (chance(r, 9, 10))
		nsect = (nsect + lbs_s - 1) / lbs_s * lbs_s;
	if (nsect > region)
		nsect = region / lbs_s != 0 ? region / lbs_s * lbs_s : region;
	sector = between(r, 0, region - nsect);
	if (chance(r, 9, 10))
		sector = sector / lbs_s * lbs_s;
	placement(r, true, &align, &phase);
	max_parts = (unsigned int)between(r, 1, 40);
	nsegs = cut(r, nsect * SECTOR, SECTOR, max_parts, segs);
	status_merged = chance(r, 1, 2);
	c->indirect = chance(r, 1, 2);

	if (!strcmp(kind, "read") || !strcmp(kind, "write")) {
		bool write = kind[0] == 'w';
		uint32_t pos = HDR_LEN;

		c->rlen = put_hdr(c->rbytes, write ? BLK_T_OUT : BLK_T_IN, 0, sector);
		if (write && nsegs == 1 && chance(r, 1, 2)) {
			/* The header and the data in one descriptor, the data still aligned. */
			header_merged = true;
			fill_random(r, c->rbytes + HDR_LEN, nsect * SECTOR);
			c->rlen += (uint32_t)(nsect * SECTOR);
			add_buf(c, false, 0, c->rlen, 4096, 4096 - HDR_LEN);
			add_buf(c, true, 0, 1, 16, 0);
		} else {
			header_bufs(r, c);
			if (write) {
				fill_random(r, c->rbytes + HDR_LEN, nsect * SECTOR);
				c->rlen += (uint32_t)(nsect * SECTOR);
				for (unsigned int i = 0; i < nsegs; i++) {
					add_buf(c, false, pos, segs[i], align, phase);
					pos += segs[i];
				}
				add_buf(c, true, 0, 1, 16, 0);
			} else {
				for (unsigned int i = 0; i < nsegs; i++)
					add_buf(c, true, 0, segs[i] + (status_merged &&
							      i == nsegs - 1), align, phase);
				if (!status_merged)
					add_buf(c, true, 0, 1, 16, 0);
			}
		}
		snprintf(c->label, sizeof(c->label), "valid %s %" PRIu64 "@%" PRIu64 "%s%s", kind,
			 nsect * SECTOR, sector, header_merged ? " header merged" : "",
			 c->indirect ? " indirect" : "");
		return;
	}
	if (!strcmp(kind, "flush")) {
		c->rlen = put_hdr(c->rbytes, BLK_T_FLUSH, 0, 0);
		header_bufs(r, c);
		add_buf(c, true, 0, 1, 16, 0);
	} else if (!strcmp(kind, "get_id")) {
		c->rlen = put_hdr(c->rbytes, BLK_T_GET_ID, 0, 0);
		add_buf(c, false, 0, HDR_LEN, 16, 0);
		add_buf(c, true, 0, (uint32_t)between(r, 1, 64), 16, 0);
		add_buf(c, true, 0, 1, 16, 0);
	} else {
		bool wz = kind[0] == 'w';
		unsigned int n = (unsigned int)between(r, 1, 8);

		c->rlen = put_hdr(c->rbytes, wz ? BLK_T_WRITE_ZEROES : BLK_T_DISCARD, 0, 0);
		for (unsigned int i = 0; i < n; i++) {
			uint64_t num = between(r, 1, chance(r, 1, 4) ? 64 : 8), s;

			if (num > region)
				num = region;
			s = between(r, 0, region - num);
			if (chance(r, 9, 10)) {
				num = num / lbs_s != 0 ? num / lbs_s * lbs_s : lbs_s;
				s = s / lbs_s * lbs_s;
			}
			c->rlen += put_seg(c->rbytes + c->rlen, s, (uint32_t)num,
					   wz && chance(r, 1, 2) ? BLK_WZ_FLAG_UNMAP : 0);
		}
		header_bufs(r, c);
		add_buf(c, false, HDR_LEN, c->rlen - HDR_LEN, 16, 0);
		add_buf(c, true, 0, 1, 16, 0);
	}
	snprintf(c->label, sizeof(c->label), "valid %s%s", kind, c->indirect ? " indirect" : "");
}

/* dwz_payload(): segments of any sector, size and flags, sometimes cut short. */
static uint32_t dwz_payload(struct rng *r, const struct limits *lim, uint8_t *p)
{
	uint64_t region = region_sectors(lim), cap = lim->capacity;
	unsigned int n = (unsigned int)below(r, 7);
	uint32_t len = 0;

	if (chance(r, 1, 20)) {
		/* Around the segment limit: 250 to 260 valid segments. */
		n = (unsigned int)between(r, 250, 260);
		for (unsigned int i = 0; i < n; i++)
			len += put_seg(p + len, (uint64_t)(i % 64) * 8 % (region ? region : 1), 0, 0);
		return len;
	}
	for (unsigned int i = 0; i < n; i++) {
		uint64_t sector;
		uint32_t num, flags;

		switch (below(r, 3)) {
		case 0:
			sector = between(r, 0, region);
			break;
		case 1:
			sector = between(r, cap > 64 ? cap - 64 : 0, cap);
			break;
		default:
			sector = rnd(r);
		}
		num = chance(r, 1, 2) ? (uint32_t)between(r, 0, 64) : (uint32_t)rnd(r);
		switch (below(r, 3)) {
		case 0:
			flags = 0;
			break;
		case 1:
			flags = 1;
			break;
		default:
			flags = (uint32_t)rnd(r);
		}
		len += put_seg(p + len, sector, num, flags);
	}
	if (chance(r, 1, 10))
		len = (uint32_t)between(r, 0, len);
	return len;
}

/* hostile_chain(): any header and buffers, readable ones before writable ones. */
static void gen_hostile(struct rng *r, const struct limits *lim, struct chain *c)
{
	uint64_t region = region_sectors(lim), cap = lim->capacity, sector, in_total;
	uint32_t type, len, cuts[8], pieces[8];
	unsigned int ncuts = 0, npieces;

	switch (below(r, 5)) {
	case 0: case 1: case 2:
		type = types[below(r, N_OF(types))];
		break;
	case 3:
		type = odd_types[below(r, N_OF(odd_types))];
		break;
	default:
		type = (uint32_t)rnd(r);
	}
	switch (below(r, 3)) {
	case 0:
		sector = between(r, 0, region);
		break;
	case 1:
		sector = between(r, cap > 600 ? cap - 600 : 0, cap + 8);
		break;
	default:
		sector = rnd(r);
	}
	len = put_hdr(c->rbytes, type, (uint32_t)rnd(r), sector);
	if (chance(r, 1, 8))
		len = (uint32_t)between(r, 0, 15);
	if (type == BLK_T_DISCARD || type == BLK_T_WRITE_ZEROES) {
		len += dwz_payload(r, lim, c->rbytes + len);
	} else {
		uint32_t size;

		switch (below(r, 3)) {
		case 0:
			size = odd_sizes[below(r, N_OF(odd_sizes))];
			break;
		case 1:
			size = (uint32_t)between(r, 1, 128) * SECTOR;
			break;
		default:
			size = (uint32_t)between(r, 0, 20000);
		}
		fill_random(r, c->rbytes + len, size);
		len += size;
	}
	c->rlen = len;
	/* Readable descriptors cut anywhere, some of them empty. */
	for (unsigned int want = (unsigned int)below(r, 7); want; want--) {
		uint32_t p = (uint32_t)between(r, 0, len);
		unsigned int i = ncuts;

		for (unsigned int j = 0; j < ncuts; j++)
			if (cuts[j] == p)
				goto next;
		while (i && cuts[i - 1] > p) {
			cuts[i] = cuts[i - 1];
			i--;
		}
		cuts[i] = p;
		ncuts++;
next:;
	}
	for (unsigned int i = 0; i <= ncuts; i++) {
		uint32_t a = i ? cuts[i - 1] : 0, b = i < ncuts ? cuts[i] : len, align, phase;

		placement(r, chance(r, 1, 2), &align, &phase);
		add_buf(c, false, a, b - a, align, phase);
	}
	switch (below(r, 3)) {
	case 0:
		in_total = odd_sizes[below(r, N_OF(odd_sizes))];
		break;
	case 1:
		in_total = between(r, 1, 128) * SECTOR + 1;
		break;
	default:
		in_total = between(r, 0, 20000);
	}
	/* Segments are only looked at with nothing writable but the status. */
	if ((type == BLK_T_DISCARD || type == BLK_T_WRITE_ZEROES) && chance(r, 1, 2))
		in_total = 1;
	npieces = in_total ? cut(r, in_total, 1, 6, pieces) : 0;
	for (unsigned int i = 0; i < npieces; i++) {
		uint32_t align, phase;

		placement(r, chance(r, 1, 2), &align, &phase);
		add_buf(c, true, 0, pieces[i], align, phase);
		if (chance(r, 1, 10))
			add_buf(c, true, 0, 0, 16, 0);
	}
	c->indirect = chance(r, 1, 2);
	snprintf(c->label, sizeof(c->label), "hostile type=%#x sector=%" PRIu64, type, sector);
}

/*
 * Requests at the limits, well formed otherwise: ranges that end exactly at
 * the capacity or one sector or block past it, segments of exactly the
 * largest size and one sector more, exactly the largest number of segments
 * and one more, GET_ID with no room, exactly the ID's room and more.
 */
static void gen_edge(struct rng *r, const struct limits *lim, struct chain *c)
{
	uint64_t cap = lim->capacity, lbs_s = lim->lbs / SECTOR;
	int64_t deltas[] = { 0, 0, 1, -1, (int64_t)lbs_s, -(int64_t)lbs_s, (int64_t)lbs_s + 1 };
	int64_t delta = deltas[below(r, N_OF(deltas))];
	uint32_t align, phase;
	unsigned int what = (unsigned int)below(r, 4);

	c->indirect = chance(r, 1, 2);
	if (what <= 1) {
		/* A read or a write of whole blocks ending at the capacity (+ delta). */
		uint64_t blocks = between(r, 1, 16), nbytes = blocks * lim->lbs, sector;
		bool write = what == 1;

		if (nbytes / SECTOR > cap)
			nbytes = cap / lbs_s != 0 ? cap / lbs_s * lim->lbs : lim->lbs;
		sector = cap - nbytes / SECTOR;
		sector = delta < 0 && (uint64_t)-delta > sector ? 0 : sector + (uint64_t)delta;
		c->rlen = put_hdr(c->rbytes, write ? BLK_T_OUT : BLK_T_IN, 0, sector);
		add_buf(c, false, 0, HDR_LEN, 16, 0);
		placement(r, chance(r, 3, 4), &align, &phase);
		if (write) {
			fill_random(r, c->rbytes + HDR_LEN, nbytes);
			c->rlen += (uint32_t)nbytes;
			add_buf(c, false, HDR_LEN, (uint32_t)nbytes, align, phase);
			add_buf(c, true, 0, 1, 16, 0);
		} else {
			add_buf(c, true, 0, (uint32_t)nbytes, align, phase);
			add_buf(c, true, 0, 1, 16, 0);
		}
		snprintf(c->label, sizeof(c->label), "edge %s %" PRIu64 "@%" PRIu64 " (capacity %"
			 PRIu64 ")", write ? "write" : "read", nbytes, sector, cap);
		return;
	}
	if (what == 2) {
		/* Discard or write zeroes: the last segment at a limit. */
		bool wz = chance(r, 1, 2);
		uint32_t max_s = wz ? lim->max_wz_sectors : lim->max_discard_sectors;
		uint32_t max_seg = wz ? lim->max_wz_seg : lim->max_discard_seg;
		uint64_t nseg = 1, num, sector;

		if (max_seg > DWZ_SEG_MAX)
			max_seg = DWZ_SEG_MAX;
		switch (below(r, 3)) {
		case 0:
			nseg = max_seg ? max_seg + (uint64_t)below(r, 2) : 1;
			break;
		case 1:
			nseg = between(r, 1, 4);
			break;
		default:
			nseg = 1;
		}
		if (nseg > DWZ_SEG_MAX + 1)
			nseg = DWZ_SEG_MAX + 1;
		c->rlen = put_hdr(c->rbytes, wz ? BLK_T_WRITE_ZEROES : BLK_T_DISCARD, 0, 0);
		for (uint64_t i = 0; i + 1 < nseg; i++)
			c->rlen += put_seg(c->rbytes + c->rlen, i * lbs_s % (cap ? cap : 1), 0, 0);
		/*
		 * One block more than the limit is refused before anything runs;
		 * exactly the limit runs.  Write zeroes without a backend operation
		 * writes up to 32 MiB of zero pages, slow under TCG on the debug
		 * kernel: at 1 in 16 of these chains, 26 per 100,000 chains zeroed
		 * 870 MB, more than every other request moved; at 1 in 128, about
		 * 3 per 100,000.
		 */
		switch (below(r, 3)) {
		case 0:
			num = max_s ? (uint64_t)max_s + lbs_s : lbs_s;
			break;
		case 1:
			num = max_s && chance(r, 1, 128) ? max_s - max_s % lbs_s : lbs_s;
			break;
		default:
			num = between(r, 1, 8) * lbs_s;
		}
		if (num > UINT32_MAX)
			num = UINT32_MAX;
		sector = num <= cap ? cap - num : 0;
		sector = delta < 0 && (uint64_t)-delta > sector ? 0 : sector + (uint64_t)delta;
		c->rlen += put_seg(c->rbytes + c->rlen, sector, (uint32_t)num,
				   wz && chance(r, 1, 2) ? BLK_WZ_FLAG_UNMAP : 0);
		add_buf(c, false, 0, HDR_LEN, 16, 0);
		add_buf(c, false, HDR_LEN, c->rlen - HDR_LEN, 16, 0);
		add_buf(c, true, 0, 1, 16, 0);
		snprintf(c->label, sizeof(c->label), "edge %s %" PRIu64 " segments, last %" PRIu64
			 "+%" PRIu64, wz ? "write zeroes" : "discard", nseg, sector, num);
		return;
	}
	/* GET_ID: no room, less than the ID, exactly it, more. */
	{
		static const uint32_t rooms[] = { 0, 1, 19, 20, 21, 512 };
		uint32_t room = rooms[below(r, N_OF(rooms))];

		c->rlen = put_hdr(c->rbytes, BLK_T_GET_ID, 0, 0);
		add_buf(c, false, 0, HDR_LEN, 16, 0);
		if (room)
			add_buf(c, true, 0, room, 16, 0);
		add_buf(c, true, 0, 1, 16, 0);
		snprintf(c->label, sizeof(c->label), "edge get_id %u", room);
	}
}

/* Chain @index of the seed: the same chain in every mode. */
static void gen_chain(const struct limits *lim, uint64_t index, struct chain *c)
{
	struct rng r = stream(0, index);

	if (lim->lbs < SECTOR || lim->lbs & (lim->lbs - 1) || !lim->capacity)
		die("internal: chain %" PRIu64 " for limits of %" PRIu64 " sectors of %u bytes",
		    index, lim->capacity, lim->lbs);
	c->index = index;
	c->nbufs = 0;
	c->rlen = 0;
	c->wlen = 0;
	c->indirect = false;
	switch (below(&r, 12)) {
	case 0: case 1: case 2: case 3: case 4: case 5: case 6:
		gen_valid(&r, lim, c);
		break;
	case 7: case 8:
		gen_edge(&r, lim, c);
		break;
	default:
		gen_hostile(&r, lim, c);
	}
}

/* The chain as a JSON object (its buffers, readable bytes in hex), for --emit and failures. */
static void print_chain(FILE *f, const struct chain *c)
{
	static const char hex[] = "0123456789abcdef";

	fprintf(f, "\"index\": %" PRIu64 ", \"label\": ", c->index);
	json_str(f, c->label);
	fprintf(f, ", \"indirect\": %s, \"bufs\": [", c->indirect ? "true" : "false");
	for (unsigned int i = 0; i < c->nbufs; i++) {
		const struct gbuf *b = &c->bufs[i];

		fprintf(f, "%s{\"w\": %d, \"len\": %u, \"align\": %u, \"phase\": %u", i ? ", " : "",
			b->write, b->len, b->align, b->phase);
		if (!b->write) {
			fputs(", \"hex\": \"", f);
			for (uint32_t k = 0; k < b->len; k++) {
				uint8_t v = c->rbytes[b->roff + k];

				fputc(hex[v >> 4], f);
				fputc(hex[v & 15], f);
			}
			fputc('"', f);
		}
		fputc('}', f);
	}
	fputc(']', f);
}

static void print_expect(FILE *f, const struct expect *e)
{
	static const char *const kinds[] = { "data", "zeroes", "undefined" };

	if (e->status < 0)
		fputs("\"status\": null", f);
	else
		fprintf(f, "\"status\": %d", e->status);
	fprintf(f, ", \"used_len\": %u, \"why\": ", e->used_len);
	json_str(f, e->why);
	fputs(", \"writes\": [", f);
	for (unsigned int i = 0; i < e->nwrites; i++)
		fprintf(f, "%s[%" PRIu64 ", %" PRIu64 ", \"%s\", %u]", i ? ", " : "",
			e->writes[i].sector, e->writes[i].nbytes, kinds[e->writes[i].kind],
			e->writes[i].data_off);
	fputs("], \"read_sector\": ", f);
	if (e->is_read)
		fprintf(f, "%" PRIu64, e->read_sector);
	else
		fputs("null", f);
}

static void print_limits(FILE *f, const struct limits *lim)
{
	fprintf(f, "\"limits\": {\"capacity\": %" PRIu64 ", \"lbs\": %u, \"max_discard_sectors\": %u, "
		"\"max_discard_seg\": %u, \"max_write_zeroes_sectors\": %u, "
		"\"max_write_zeroes_seg\": %u, \"read_only\": %s}", lim->capacity, lim->lbs,
		lim->max_discard_sectors, lim->max_discard_seg, lim->max_wz_sectors,
		lim->max_wz_seg, lim->read_only ? "true" : "false");
}

/* ---- --emit ----------------------------------------------------------------------------------- */

static struct limits emit_limits(void)
{
	return (struct limits){
		.capacity = opt.capacity, .lbs = opt.lbs,
		.max_discard_sectors = opt.discard ? opt.max_discard_sectors : 0,
		.max_discard_seg = opt.discard && opt.max_discard_sectors ? opt.max_discard_seg : 0,
		.max_wz_sectors = opt.write_zeroes ? opt.max_wz_sectors : 0,
		.max_wz_seg = opt.write_zeroes && opt.max_wz_sectors ? opt.max_wz_seg : 0,
		.read_only = opt.read_only,
	};
}

static int run_emit(void)
{
	struct limits lim = emit_limits();
	struct chain c = { 0 };
	static struct expect e;

	c.rbytes = malloc(rmax);
	if (!c.rbytes)
		die("out of memory");
	for (uint64_t i = opt.first; i < opt.first + opt.count; i++) {
		gen_chain(&lim, i, &c);
		expect_chain(&lim, &c, &e);
		fputc('{', stdout);
		print_limits(stdout, &lim);
		fputs(", ", stdout);
		print_chain(stdout, &c);
		fputs(", ", stdout);
		print_expect(stdout, &e);
		if (opt.fault != F_NONE) {
			/* The oracle's answer above, the fault's here (power-off: before it). */
			fault_adjust(&e, c.wlen ? c.wlen - 1 : 0);
			printf(", \"fault\": {\"status\": %d, \"by_fault\": %d, \"partial\": %d, "
			       "\"may_fail\": %d, \"no_effect\": %d, \"nwrites\": %u}", e.status,
			       e.by_fault, e.partial, e.may_fail, e.no_effect, e.nwrites);
		}
		fputs("}\n", stdout);
	}
	free(c.rbytes);
	return 0;
}

/* ---- the shadow of the disk (oracle.Shadow and check_batch's rule, over time) ----------------- */

/*
 * What the first sectors of a backend must hold.  Requests in flight at the
 * same time may run in any order, so (as oracle.check_batch() does for a
 * batch) a sector written by two requests whose lifetimes overlap becomes
 * unknown until written again, and a read does not compare a sector that a
 * write in flight at any moment of the read's lifetime touches: the sector
 * must have had no write in flight when the read was submitted
 * (writers == 0), none submitted or completed since (last_wsub and
 * last_wdone older than the read's sequence number).
 */
struct shadow {
	uint64_t sectors;
	uint8_t *data;
	uint8_t *known;
	uint8_t *conflict;
	uint32_t *writers;
	uint64_t *last_wsub;
	uint64_t *last_wdone;
};

static uint64_t gseq;	/* one tick per submission and per completion */

static void shadow_init(struct shadow *sh, uint64_t sectors)
{
	sh->sectors = sectors;
	sh->data = malloc(sectors * SECTOR);
	sh->known = calloc(sectors, 1);
	sh->conflict = calloc(sectors, 1);
	sh->writers = calloc(sectors, sizeof(uint32_t));
	sh->last_wsub = calloc(sectors, sizeof(uint64_t));
	sh->last_wdone = calloc(sectors, sizeof(uint64_t));
	if (!sh->data || !sh->known || !sh->conflict || !sh->writers || !sh->last_wsub ||
	    !sh->last_wdone)
		die("out of memory for a shadow of %" PRIu64 " sectors", sectors);
}

/* [*lo, *hi) of a range clipped to the shadow. */
static bool shadow_clip(const struct shadow *sh, uint64_t sector, uint64_t nbytes, uint64_t *lo,
			uint64_t *hi)
{
	uint64_t n = nbytes / SECTOR;

	*lo = sector < sh->sectors ? sector : sh->sectors;
	*hi = n <= sh->sectors - *lo ? *lo + n : sh->sectors;
	return *lo < *hi;
}

static void shadow_submit_write(struct shadow *sh, const struct wrange *w, uint64_t seq)
{
	uint64_t lo, hi;

	if (!shadow_clip(sh, w->sector, w->nbytes, &lo, &hi))
		return;
	for (uint64_t s = lo; s < hi; s++) {
		if (++sh->writers[s] > 1)
			sh->conflict[s] = 1;
		sh->last_wsub[s] = seq;
	}
}

/* A write in flight is over; @rbytes is its chain's readable bytes, NULL if it failed. */
static void shadow_complete_write(struct shadow *sh, const struct wrange *w, const uint8_t *rbytes,
				  uint64_t seq)
{
	uint64_t lo, hi;

	if (!shadow_clip(sh, w->sector, w->nbytes, &lo, &hi))
		return;
	for (uint64_t s = lo; s < hi; s++) {
		if (!rbytes || sh->conflict[s] || w->kind == W_UNDEF) {
			sh->known[s] = 0;
		} else {
			uint8_t *dst = sh->data + s * SECTOR;

			if (w->kind == W_ZEROES)
				memset(dst, 0, SECTOR);
			else
				memcpy(dst, rbytes + w->data_off + (s - w->sector) * SECTOR, SECTOR);
			sh->known[s] = 1;
		}
		if (!--sh->writers[s])
			sh->conflict[s] = 0;
		sh->last_wdone[s] = seq;
	}
}

/* A write in flight that will never run (dropped, or moved to another backend). */
static void shadow_unregister(struct shadow *sh, const struct wrange *w, uint64_t seq)
{
	uint64_t lo, hi;

	if (!shadow_clip(sh, w->sector, w->nbytes, &lo, &hi))
		return;
	for (uint64_t s = lo; s < hi; s++) {
		if (!--sh->writers[s])
			sh->conflict[s] = 0;
		sh->last_wdone[s] = seq;
	}
}

/* ---- the device and its queues ---------------------------------------------------------------- */

struct slot {
	uint8_t *arena;		/* the buffers and the indirect table, in guest memory */
	struct chain c;
	struct expect e;
	uint64_t addrs[MAX_BUFS];
	uint16_t descs[MAX_BUFS];
	unsigned int ndescs;
	uint8_t *status_ptr;	/* the last writable byte, NULL without one */
	uint64_t seq0;
	uint64_t t0;
	bool busy;
	bool ambiguous;		/* lifecycle: served by sh or sh2, unknown which */
	struct shadow *sh;	/* the backend it was submitted to */
	struct shadow *sh2;	/* if ambiguous: the other one */
};

struct fq {
	unsigned int index;
	struct vr_ring r;
	int kick_fd, call_fd, err_fd;
	uint16_t avail_idx, kicked_idx, last_used;
	uint16_t *free_desc;
	unsigned int nfree_desc;
	int *slot_of_head;
	struct slot *slots;
	unsigned int nslots;
	unsigned int *free_slots;
	unsigned int nfree_slots;
	unsigned int inflight;
	int pending;		/* a slot whose chain waits for descriptors, or -1 */
	bool kick_all;		/* kick at the next publish whatever the device asked */
};

struct dev {
	int fd;
	struct gmem mem;
	struct fq q[MAX_QUEUES];
	unsigned int nq;
	unsigned int depth;
	unsigned int ring_num;
	uint64_t features;
	bool event_idx;
	struct limits lim;
	struct blk_config cfg;
	unsigned int workers[MAX_QUEUES];	/* worker ids; [0] is SET_OWNER's */
	unsigned int nworkers;
};

static size_t arena_size(void)
{
	size_t a = (size_t)rmax + wmax + MAX_BUFS * 4096u + 16u * MAX_BUFS + 8192;

	return (a + 4095) & ~(size_t)4095;
}

/* ---- statistics ---------------------------------------------------------------------------- */

static struct {
	uint64_t requests;	/* completions checked */
	uint64_t status[4];	/* OK, IOERR, UNSUPP, no status */
	uint64_t mismatches;	/* wrong status or used length */
	uint64_t data_mismatches;
	uint64_t poisoned;	/* rejected requests that wrote into their buffers */
	uint64_t id_mismatches;
	uint64_t vq_errors;
	uint64_t bad_used;
	uint64_t verified_sectors;
	uint64_t skipped_sectors;
	uint64_t kicks;
	uint64_t waits;
	uint64_t sweep_reads;
	uint64_t ring_used, ring_err, ring_valid_after, ring_used_and_err, ring_err_again;
	uint64_t lifecycle_actions;
	uint64_t ioctl_errors_expected;
	uint64_t dropped;	/* requests the doc allows to be dropped (close, RESET_OWNER) */
	uint64_t wait_ns;	/* blocked in poll() */
	uint64_t wait_timeouts;
	uint64_t lat_max_ns;	/* the slowest request */
	uint64_t lat_max_index;
	char lat_max_label[96];
	uint64_t lat_sum_ns;
	uint64_t fault_expected;	/* IOERR as the fault made it due */
	uint64_t fault_failed;		/* IOERR where the fault allowed it */
	uint64_t fault_dropped;		/* writes OK and thrown away */
} st;

static void report(const char *kind, const struct slot *s, int status, int64_t used,
		   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/*
 * One failure as a JSON line: what went wrong, the chain (if there is one)
 * with its expected and actual answer, and how to send it again alone.
 */
static void report(const char *kind, const struct slot *s, int status, int64_t used,
		   const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	n_failures++;
	if (n_failures > opt.max_failures)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	printf("{\"tool\": \"vblk-fuzz\", \"failure\": \"%s\", \"detail\": ", kind);
	json_str(stdout, msg);
	printf(", \"seed\": %" PRIu64, opt.seed);
	if (s) {
		printf(", ");
		print_chain(stdout, &s->c);
		printf(", \"expected\": {");
		print_expect(stdout, &s->e);
		printf("}, \"actual\": {\"status\": ");
		if (status < 0)
			printf("null");
		else
			printf("%d", status);
		printf(", \"used_len\": %" PRId64 "}", used);
		if (s->c.index < (1ull << 62))
			printf(", \"replay\": \"vblk-fuzz --replay %" PRIu64 ":%" PRIu64 "%s\"",
			       opt.seed, s->c.index, argv_line);
	}
	printf("}\n");
	fflush(stdout);
}

/* ---- device set-up ------------------------------------------------------------------------ */

/* An ioctl that must succeed, bounded by the watchdog. */
static void must(int ret, const char *what)
{
	unwatch();
	if (ret)
		die("%s on %s: %s", what, opt.vhost, strerror(-ret));
}

static int new_eventfd(void)
{
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	if (fd < 0)
		die("eventfd: %s", strerror(errno));
	return fd;
}

/* Reset a queue's driver-side state to an empty ring, indices @idx. */
static void fq_reset(struct fq *q, uint16_t idx)
{
	q->avail_idx = q->kicked_idx = q->last_used = idx;
	q->nfree_desc = 0;
	for (unsigned int i = q->r.num; i-- > 0;)
		q->free_desc[q->nfree_desc++] = (uint16_t)i;
	for (unsigned int i = 0; i < q->r.num; i++)
		q->slot_of_head[i] = -1;
	q->nfree_slots = 0;
	for (unsigned int i = q->nslots; i-- > 0;) {
		q->slots[i].busy = false;
		q->free_slots[q->nfree_slots++] = i;
	}
	q->inflight = 0;
	q->pending = -1;
	q->kick_all = true;
}

/*
 * Guest memory for @nq queues of @ring_num entries with @depth slots each;
 * the driver-side state, the rings cleared.  The slots' host buffers are
 * allocated once and kept across devices.
 */
static void dev_layout(struct dev *d, unsigned int nq, unsigned int depth, unsigned int ring_num)
{
	size_t size = 0, asz = arena_size();
	const char *what;
	int ret;

	d->nq = nq;
	d->depth = depth;
	d->ring_num = ring_num;
	size += nq * (vr_desc_size(ring_num) + vr_avail_size(ring_num) + vr_used_size(ring_num) +
		      3 * 4096);
	size += (size_t)nq * depth * asz + 4096;
	size = (size + (2u << 20) - 1) & ~(size_t)((2u << 20) - 1);
	/*
	 * Not populated: a slot's arena is sized for its largest chain, most
	 * chains touch a few pages of it, and faulting 60 MiB in up front took
	 * most of a minute under TCG on the debug kernel.
	 */
	ret = gmem_init(&d->mem, size, "vblk-fuzz", false, &what);
	if (ret)
		die("%s: %s", what, strerror(-ret));
	for (unsigned int i = 0; i < nq; i++) {
		struct fq *q = &d->q[i];

		q->index = i;
		if (vr_ring_alloc(&q->r, &d->mem, ring_num))
			die("internal: guest memory too small for the rings");
		if (!q->free_desc) {
			q->free_desc = calloc(32768, sizeof(uint16_t));
			q->slot_of_head = calloc(32768, sizeof(int));
			q->slots = calloc(depth, sizeof(struct slot));
			q->free_slots = calloc(depth, sizeof(unsigned int));
			if (!q->free_desc || !q->slot_of_head || !q->slots || !q->free_slots)
				die("out of memory");
			for (unsigned int s = 0; s < depth; s++) {
				q->slots[s].c.rbytes = malloc(rmax);
				if (!q->slots[s].c.rbytes)
					die("out of memory");
			}
		}
		q->nslots = depth;
		q->kick_fd = q->call_fd = q->err_fd = -1;
	}
	for (unsigned int i = 0; i < nq; i++)
		for (unsigned int s = 0; s < depth; s++) {
			d->q[i].slots[s].arena = gmem_alloc(&d->mem, asz, 4096);
			if (!d->q[i].slots[s].arena)
				die("internal: guest memory too small for the buffers");
		}
	for (unsigned int i = 0; i < nq; i++)
		fq_reset(&d->q[i], 0);
}

static void fq_new_eventfds(struct fq *q)
{
	q->kick_fd = new_eventfd();
	q->call_fd = new_eventfd();
	q->err_fd = new_eventfd();
}

static void fq_close_eventfds(struct fq *q)
{
	if (q->kick_fd >= 0)
		close(q->kick_fd);
	if (q->call_fd >= 0)
		close(q->call_fd);
	if (q->err_fd >= 0)
		close(q->err_fd);
	q->kick_fd = q->call_fd = q->err_fd = -1;
}

static uint64_t wanted_features(void)
{
	uint64_t f = (1ull << F_VERSION_1) | (1ull << F_RING_INDIRECT_DESC) |
		     (1ull << F_RING_EVENT_IDX) | (1ull << F_BLK_SIZE_MAX) | (1ull << F_BLK_SEG_MAX) |
		     (1ull << F_BLK_BLK_SIZE) | (1ull << F_BLK_FLUSH) | (1ull << F_BLK_MQ);

	if (opt.discard)
		f |= 1ull << F_BLK_DISCARD;
	if (opt.write_zeroes)
		f |= 1ull << F_BLK_WRITE_ZEROES;
	if (opt.read_only)
		f |= 1ull << F_BLK_RO;
	return f;
}

/*
 * Limits.from_config(): what the device serves with the features acked.
 *
 * Through a pointer, not returned: gcc 12.2 -O2 (Debian 12) takes a
 * function whose only store is "global = f(...)" with a returned structure
 * for a const one (ipa-pure-const) and drops calls to it.
 */
static void limits_from(struct limits *out, const struct blk_config *cfg, uint64_t features,
			bool ro_file)
{
	bool discard = (features & (1ull << F_BLK_DISCARD)) && cfg->max_discard_sectors;
	bool wz = features & (1ull << F_BLK_WRITE_ZEROES);

	*out = (struct limits){
		.capacity = cfg->capacity, .lbs = cfg->blk_size ? cfg->blk_size : SECTOR,
		.max_discard_sectors = discard ? cfg->max_discard_sectors : 0,
		.max_discard_seg = discard ? cfg->max_discard_seg : 0,
		.max_wz_sectors = wz ? cfg->max_write_zeroes_sectors : 0,
		.max_wz_seg = wz ? cfg->max_write_zeroes_seg : 0,
		.read_only = ro_file || (features & (1ull << F_BLK_RO)),
	};
}

/*
 * SET_BACKEND that waits (up to 60 s) while the block device is still
 * claimed by a device closed with requests in flight (-EBUSY until its
 * last request completes, see "Requests that never complete").
 */
static int set_backend_busy(int fd, int bdev_fd)
{
	uint64_t end = now_ns() + 60ull * 1000000000ull;
	int ret;

	for (;;) {
		watch("VHOST_BLK_SET_BACKEND", 60);
		ret = vr_set_backend(fd, bdev_fd);
		unwatch();
		if (ret != -EBUSY || now_ns() > end)
			return ret;
		usleep(20000);
	}
}

/*
 * The documented start on an open device: SET_OWNER, GET_FEATURES,
 * SET_BACKEND and GET_CONFIG (what the backend can do), SET_SERIAL; then
 * SET_FEATURES, SET_MEM_TABLE, workers, the vrings and SET_BACKEND again,
 * which starts them.  @bdev_fd < 0: no backend (the caller sets it).
 */
static void dev_setup(struct dev *d, int bdev_fd, unsigned int nworkers, uint64_t features)
{
	uint64_t offered;
	const char *what;

	watch("VHOST_SET_OWNER", 60);
	must(vr_ioctl(d->fd, VHOST_SET_OWNER, NULL), "VHOST_SET_OWNER");
	must(vr_ioctl(d->fd, VHOST_GET_FEATURES, &offered), "VHOST_GET_FEATURES");
	if (bdev_fd >= 0) {
		must(set_backend_busy(d->fd, bdev_fd), "VHOST_BLK_SET_BACKEND");
		must(vr_get_config(d->fd, &d->cfg, sizeof(d->cfg)), "VHOST_BLK_GET_CONFIG");
	}
	must(vr_set_serial(d->fd, SERIAL), "VHOST_BLK_SET_SERIAL");
	d->features = offered & features;
	d->event_idx = d->features & (1ull << F_RING_EVENT_IDX);
	must(vr_ioctl(d->fd, VHOST_SET_FEATURES, &d->features), "VHOST_SET_FEATURES");
	watch("VHOST_SET_MEM_TABLE", 60);
	must(vr_set_mem_identity(d->fd, &d->mem), "VHOST_SET_MEM_TABLE");
	d->workers[0] = 0;
	must(vr_get_vring_worker(d->fd, 0, &d->workers[0]), "VHOST_GET_VRING_WORKER");
	d->nworkers = nworkers ? nworkers : 1;
	for (unsigned int w = 1; w < d->nworkers; w++)
		must(vr_new_worker(d->fd, &d->workers[w]), "VHOST_NEW_WORKER");
	for (unsigned int i = 0; i < d->nq; i++) {
		struct fq *q = &d->q[i];

		fq_close_eventfds(q);
		fq_new_eventfds(q);
		must(vr_setup_vring(d->fd, i, &q->r, q->avail_idx, q->kick_fd, q->call_fd,
				    q->err_fd, &what), what);
		if (i % d->nworkers)
			must(vr_attach_vring_worker(d->fd, i, d->workers[i % d->nworkers]),
			     "VHOST_ATTACH_VRING_WORKER");
	}
	if (bdev_fd >= 0)
		must(set_backend_busy(d->fd, bdev_fd), "VHOST_BLK_SET_BACKEND");
}

/* Open the device and set it up (dev_setup()). */
static void dev_start(struct dev *d, int bdev_fd, unsigned int nworkers)
{
	d->fd = open(opt.vhost, O_RDWR | O_CLOEXEC);
	if (d->fd < 0)
		die("cannot open %s: %s", opt.vhost, strerror(errno));
	dev_setup(d, bdev_fd, nworkers, wanted_features());
}

/* Close the device, then the eventfds (the memory stays: see dev_free_memory()). */
static void dev_close(struct dev *d)
{
	watch("close of the device", 60);
	close(d->fd);
	unwatch();
	d->fd = -1;
	for (unsigned int i = 0; i < d->nq; i++)
		fq_close_eventfds(&d->q[i]);
}

/* ---- submission ------------------------------------------------------------------------------- */

static uint32_t place_off(uint32_t cur, uint32_t align, uint32_t phase)
{
	uint32_t x = cur / align * align + phase;

	return x >= cur ? x : x + align;
}

/*
 * Put the chain of slot @si in its arena and on the ring (not yet visible:
 * see publish()).  False if the ring has not enough free descriptors.
 */
static bool place(struct fq *q, unsigned int si)
{
	struct slot *s = &q->slots[si];
	struct chain *c = &s->c;
	unsigned int need = c->indirect ? 1 : c->nbufs;
	uint32_t off = 0;
	int last_w = -1;
	uint16_t head;

	if (q->nfree_desc < need)
		return false;
	for (unsigned int i = 0; i < c->nbufs; i++) {
		const struct gbuf *b = &c->bufs[i];

		off = place_off(off, b->align, b->phase);
		s->addrs[i] = gpa(s->arena + off);
		if (b->write)
			memset(s->arena + off, POISON, b->len);
		else
			memcpy(s->arena + off, c->rbytes + b->roff, b->len);
		if (b->write && b->len)
			last_w = (int)i;
		off += b->len ? b->len : 1;
	}
	s->status_ptr = NULL;
	if (last_w >= 0) {
		s->status_ptr = (uint8_t *)(uintptr_t)(s->addrs[last_w] + c->bufs[last_w].len - 1);
		*s->status_ptr = STATUS_POISON;
	}
	if (off + 16u * c->nbufs + 16 > arena_size())
		die("internal: chain %" PRIu64 " does not fit its arena", c->index);
	if (c->indirect) {
		struct desc *t;

		off = place_off(off, 16, 0);
		t = (struct desc *)(s->arena + off);
		for (unsigned int i = 0; i < c->nbufs; i++) {
			bool more = i + 1 < c->nbufs;

			t[i] = (struct desc){ s->addrs[i], c->bufs[i].len,
					      (uint16_t)((c->bufs[i].write ? DESC_F_WRITE : 0) |
							 (more ? DESC_F_NEXT : 0)),
					      (uint16_t)(more ? i + 1 : 0) };
		}
		head = q->free_desc[--q->nfree_desc];
		q->r.desc[head] = (struct desc){ gpa(t), 16 * c->nbufs, DESC_F_INDIRECT, 0 };
		s->descs[0] = head;
		s->ndescs = 1;
	} else {
		for (unsigned int i = 0; i < c->nbufs; i++)
			s->descs[i] = q->free_desc[--q->nfree_desc];
		for (unsigned int i = 0; i < c->nbufs; i++) {
			bool more = i + 1 < c->nbufs;

			q->r.desc[s->descs[i]] = (struct desc){
				s->addrs[i], c->bufs[i].len,
				(uint16_t)((c->bufs[i].write ? DESC_F_WRITE : 0) |
					   (more ? DESC_F_NEXT : 0)),
				more ? s->descs[i + 1] : 0 };
		}
		s->ndescs = c->nbufs;
		head = s->descs[0];
	}
	q->slot_of_head[head] = (int)si;
	q->r.avail[2 + q->avail_idx % q->r.num] = head;
	q->avail_idx++;
	q->inflight++;
	s->busy = true;
	s->seq0 = ++gseq;
	s->t0 = now_ns();
	if ((s->e.status == BLK_S_OK && !s->e.no_effect) || s->e.partial)
		for (unsigned int i = 0; i < s->e.nwrites; i++)
			shadow_submit_write(s->sh, &s->e.writes[i], s->seq0);
	return true;
}

/* Make what was placed visible and kick if the device asked for it. */
static void publish(struct dev *d, struct fq *q)
{
	bool kick;

	if (q->avail_idx == q->kicked_idx && !q->kick_all)
		return;
	__atomic_store_n(&q->r.avail[1], q->avail_idx, __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (q->kick_all)
		kick = true;
	else if (d->event_idx)
		kick = vr_need_event(__atomic_load_n(q->r.avail_event, __ATOMIC_RELAXED),
				     q->avail_idx, q->kicked_idx);
	else
		kick = !(__atomic_load_n(&q->r.used_hdr[0], __ATOMIC_RELAXED) & USED_F_NO_NOTIFY);
	q->kicked_idx = q->avail_idx;
	q->kick_all = false;
	if (kick) {
		uint64_t one = 1;

		st.kicks++;
		if (write(q->kick_fd, &one, 8) != 8)
			die("kick of queue %u: %s", q->index, strerror(errno));
	}
}

/* A free slot of @q with chain @index (or the chain made by @make) and its expectation. */
static int take_slot(struct fq *q)
{
	if (!q->nfree_slots)
		return -1;
	return (int)q->free_slots[--q->nfree_slots];
}

static void release_slot(struct fq *q, unsigned int si)
{
	struct slot *s = &q->slots[si];

	for (unsigned int i = 0; i < s->ndescs; i++)
		q->free_desc[q->nfree_desc++] = s->descs[i];
	q->slot_of_head[s->descs[0]] = -1;
	s->ndescs = 0;
	s->busy = false;
	s->ambiguous = false;
	q->inflight--;
	q->free_slots[q->nfree_slots++] = si;
}

/* ---- completion -------------------------------------------------------------------------------- */

static uint8_t *gather_buf;

/* The first @n writable bytes of the slot's chain, in chain order. */
static const uint8_t *gather(const struct slot *s, uint64_t n)
{
	uint64_t got = 0;

	if (n > wmax)
		die("internal: %" PRIu64 " writable bytes, more than the %u a chain may have", n, wmax);
	for (unsigned int i = 0; i < s->c.nbufs && got < n; i++) {
		const struct gbuf *b = &s->c.bufs[i];
		uint64_t k = b->len < n - got ? b->len : n - got;

		if (!b->write)
			continue;
		memcpy(gather_buf + got, (const void *)(uintptr_t)s->addrs[i], k);
		got += k;
	}
	return gather_buf;
}

static bool all_poison(const uint8_t *p, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		if (p[i] != POISON)
			return false;
	return true;
}

static void end_writes(struct slot *s, bool ok)
{
	if (s->e.partial)
		ok = false;
	else if (s->e.status != BLK_S_OK || s->e.no_effect)
		return;
	++gseq;
	for (unsigned int i = 0; i < s->e.nwrites; i++) {
		shadow_complete_write(s->sh, &s->e.writes[i], ok && !s->ambiguous ? s->c.rbytes : NULL,
				      gseq);
		if (s->ambiguous)
			shadow_complete_write(s->sh2, &s->e.writes[i], NULL, gseq);
	}
}

/* Check a completed request against the oracle and the shadow (oracle.check_batch()). */
#define NO_ANSWER	(-1000)	/* replay: the chain got no used entry */
static int last_status = NO_ANSWER;
static uint32_t last_used_len;

static void check_completion(struct slot *s, uint32_t used_len)
{
	const struct expect *e = &s->e;
	int status = s->status_ptr ? *s->status_ptr : -1;
	uint64_t in_len = s->c.wlen ? s->c.wlen - 1 : 0;

	last_status = status;
	last_used_len = used_len;
	{
		uint64_t lat = now_ns() - s->t0;

		st.lat_sum_ns += lat;
		if (lat > st.lat_max_ns) {
			st.lat_max_ns = lat;
			st.lat_max_index = s->c.index;
			snprintf(st.lat_max_label, sizeof(st.lat_max_label), "%s", s->c.label);
		}
	}

	st.requests++;
	st.status[status < 0 ? 3 : status <= 2 ? status : 1]++;
	if (e->may_fail && status == BLK_S_IOERR && used_len == e->used_len &&
	    (opt.fault != F_POWER_OFF || power_started)) {
		/* Failed by the fault: what its writes did is unknown. */
		st.fault_failed++;
		end_writes(s, false);
		return;
	}
	if (status != e->status || used_len != e->used_len) {
		st.mismatches++;
		report("mismatch", s, status, used_len, "status %d used %u, expected %d used %u (%s)",
		       status, used_len, e->status, e->used_len, e->why);
		end_writes(s, false);
		return;
	}
	if (e->by_fault)
		st.fault_expected++;
	if (e->no_effect)
		st.fault_dropped++;
	if (e->status != BLK_S_OK) {
		/* A read failed by the fault may have filled some of its buffers. */
		if (e->status >= 0 && !e->partial && !all_poison(gather(s, in_len), in_len)) {
			st.poisoned++;
			report("poison", s, status, used_len,
			       "rejected (%s), but the device wrote into its buffers", e->why);
		}
		end_writes(s, false);
		return;
	}
	if (e->is_read && !s->ambiguous) {
		const uint8_t *got = gather(s, in_len);
		uint64_t lo, hi, bad[8];
		unsigned int nbad = 0;
		struct shadow *sh = s->sh;

		if (shadow_clip(sh, e->read_sector, in_len, &lo, &hi)) {
			for (uint64_t sec = lo; sec < hi; sec++) {
				if (!sh->known[sec] || sh->writers[sec] || sh->last_wsub[sec] > s->seq0 ||
				    sh->last_wdone[sec] > s->seq0) {
					st.skipped_sectors++;
					continue;
				}
				st.verified_sectors++;
				if (memcmp(got + (sec - e->read_sector) * SECTOR,
					   sh->data + sec * SECTOR, SECTOR)) {
					if (nbad < 8)
						bad[nbad] = sec;
					nbad++;
				}
			}
		}
		if (nbad) {
			st.data_mismatches++;
			report("data", s, status, used_len, "%u sectors differ from what was "
			       "written, first %" PRIu64 " %" PRIu64 " %" PRIu64, nbad, bad[0],
			       nbad > 1 ? bad[1] : bad[0], nbad > 2 ? bad[2] : bad[0]);
		}
	} else if (e->is_get_id) {
		/* The ID, then zeroes up to the status byte. */
		const uint8_t *got = gather(s, in_len);
		uint8_t want[BLK_ID_BYTES] = { 0 };

		memcpy(want, SERIAL, strlen(SERIAL));
		for (uint64_t i = 0; i < in_len; i++) {
			if (got[i] != (i < BLK_ID_BYTES ? want[i] : 0)) {
				st.id_mismatches++;
				report("get_id", s, status, used_len, "byte %" PRIu64 " of the ID "
				       "is %#x, serial %s and zeroes expected", i, got[i], SERIAL);
				break;
			}
		}
	}
	end_writes(s, true);
}

/* Collect the used entries of @q; returns how many. */
static unsigned int reap(struct fq *q)
{
	uint16_t used = vr_used_idx(&q->r);
	unsigned int n = 0;

	while (q->last_used != used) {
		struct used_elem ue = q->r.used_ring[q->last_used % q->r.num];
		int si;

		q->last_used++;
		if (ue.id >= q->r.num || (si = q->slot_of_head[ue.id]) < 0) {
			st.bad_used++;
			report("bad-used-id", NULL, -1, ue.len, "queue %u: used entry %u (id %u, len "
			       "%u) is not a head in flight; used idx %u, avail idx %u, %u in flight",
			       q->index, (uint16_t)(q->last_used - 1), ue.id, ue.len, used,
			       q->avail_idx, q->inflight);
			continue;
		}
		check_completion(&q->slots[si], ue.len);
		release_slot(q, (unsigned int)si);
		n++;
	}
	return n;
}

/* Ask for a call at the next completion; false if one is there already. */
static bool enable_calls(struct dev *d, struct fq *q)
{
	if (d->event_idx)
		__atomic_store_n(vr_used_event(&q->r), q->last_used, __ATOMIC_RELAXED);
	else
		__atomic_store_n(&q->r.avail[0], 0, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return vr_used_idx(&q->r) == q->last_used;
}

static uint64_t drain_eventfd(int fd)
{
	uint64_t v = 0;

	if (fd >= 0 && read(fd, &v, 8) != 8)
		v = 0;
	return v;
}

/*
 * Wait up to @ms for a call or an error eventfd of any queue.  Returns the
 * number of error events seen (each counted in st.vq_errors by the caller).
 */
static unsigned int wait_any(struct dev *d, int ms, bool *errq)
{
	struct pollfd pfd[2 * MAX_QUEUES];
	unsigned int n = 0, errs = 0;

	for (unsigned int i = 0; i < d->nq; i++) {
		if (!enable_calls(d, &d->q[i]))
			return 0;
	}
	for (unsigned int i = 0; i < d->nq; i++) {
		pfd[n++] = (struct pollfd){ .fd = d->q[i].call_fd, .events = POLLIN };
		pfd[n++] = (struct pollfd){ .fd = d->q[i].err_fd, .events = POLLIN };
	}
	st.waits++;
	{
		uint64_t t0 = now_ns();
		int got = poll(pfd, n, ms);

		st.wait_ns += now_ns() - t0;
		if (got <= 0) {
			st.wait_timeouts++;
			return 0;
		}
	}
	for (unsigned int i = 0; i < d->nq; i++) {
		if (pfd[2 * i].revents & POLLIN)
			drain_eventfd(d->q[i].call_fd);
		if ((pfd[2 * i + 1].revents & POLLIN) && drain_eventfd(d->q[i].err_fd)) {
			errs++;
			if (errq)
				errq[i] = true;
		}
	}
	return errs;
}

/* ---- the request fuzzer ------------------------------------------------------------------------- */

static struct shadow shadows[2];
static int bdev_fds[2] = { -1, -1 };
static bool bdev_ro[2];
static uint64_t next_index;	/* the next chain to generate */
static uint64_t t_start;
static uint64_t last_progress_ns;
static uint64_t sweep_index = 1ull << 62;

/*
 * A progress line every 30 s on stderr and in the kernel log: the host
 * follows the guest's console while the run goes on.
 */
static void progress(bool force)
{
	uint64_t now = now_ns();
	char line[256];
	int fd;

	if (!force && now - last_progress_ns < 30ull * 1000000000ull)
		return;
	last_progress_ns = now;
	snprintf(line, sizeof(line), "vblk-fuzz: seed %" PRIu64 ": %" PRIu64 " requests, %" PRIu64
		 " chains, %.0f s, %" PRIu64 " failures, %" PRIu64 " lifecycle actions\n",
		 opt.seed, st.requests, next_index, (double)(now - t_start) / 1e9, n_failures,
		 st.lifecycle_actions);
	fputs(line, stderr);
	fd = open("/dev/kmsg", O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (write(fd, line, strlen(line)) < 0) {
			/* No kernel log: stderr has it. */
		}
		close(fd);
	}
}

static bool budget_left(void)
{
	if (next_index >= opt.requests)
		return false;
	return !opt.seconds || (double)(now_ns() - t_start) / 1e9 < opt.seconds;
}

static int open_bdev(const char *path, bool *ro)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);

	*ro = false;
	if (fd < 0 && (errno == EROFS || errno == EACCES)) {
		fd = open(path, O_RDONLY | O_CLOEXEC);
		*ro = true;
	}
	if (fd < 0)
		die("cannot open %s: %s", path, strerror(errno));
	return fd;
}

/*
 * The shadowed region of a backend gets random data of the seed, written
 * with O_DIRECT past the device, so that a read returning anything else
 * (zeroes, another block) is caught.
 */
static void fill_region(const char *path, struct shadow *sh, uint64_t which)
{
	struct rng r = stream(1, which);
	uint64_t bytes = sh->sectors * SECTOR, chunk = 1u << 20;
	uint8_t *buf;
	int fd;

	fill_random(&r, sh->data, bytes);
	memset(sh->known, 1, sh->sectors);
	fd = open(path, O_WRONLY | O_DIRECT | O_CLOEXEC);
	if (fd < 0) {
		/* A read-only backend: learn what it holds instead. */
		fd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);
		if (fd < 0)
			die("cannot open %s with O_DIRECT: %s", path, strerror(errno));
		if (posix_memalign((void **)&buf, 4096, chunk))
			die("out of memory");
		for (uint64_t off = 0; off < bytes; off += chunk) {
			uint64_t n = bytes - off < chunk ? bytes - off : chunk;

			if (pread(fd, buf, n, (off_t)off) != (ssize_t)n)
				die("reading %s: %s", path, strerror(errno));
			memcpy(sh->data + off, buf, n);
		}
		free(buf);
		close(fd);
		return;
	}
	if (posix_memalign((void **)&buf, 4096, chunk))
		die("out of memory");
	for (uint64_t off = 0; off < bytes; off += chunk) {
		uint64_t n = bytes - off < chunk ? bytes - off : chunk;

		memcpy(buf, sh->data + off, n);
		if (pwrite(fd, buf, n, (off_t)off) == (ssize_t)n)
			continue;
		if (errno != EIO)
			die("writing the initial data to %s: %s", path, strerror(errno));
		/* Bad blocks (--fault badblocks): 4 KiB at a time, the failed ones unknown. */
		for (uint64_t k = 0; k < n; k += 4096) {
			if (pwrite(fd, buf + k, 4096, (off_t)(off + k)) == 4096)
				continue;
			if (errno != EIO)
				die("writing the initial data to %s: %s", path, strerror(errno));
			memset(sh->known + (off + k) / SECTOR, 0, 4096 / SECTOR);
		}
	}
	free(buf);
	close(fd);
}

/* A plain read of @nbytes at @sector (the final sweep), in slot @si. */
static void make_read(struct slot *s, uint64_t sector, uint32_t nbytes)
{
	struct chain *c = &s->c;

	c->index = sweep_index++;
	c->nbufs = 0;
	c->wlen = 0;
	c->indirect = false;
	c->rlen = put_hdr(c->rbytes, BLK_T_IN, 0, sector);
	add_buf(c, false, 0, HDR_LEN, 16, 0);
	add_buf(c, true, 0, nbytes, 4096, 0);
	add_buf(c, true, 0, 1, 16, 0);
	snprintf(c->label, sizeof(c->label), "sweep read %u@%" PRIu64, nbytes, sector);
}

/* The oracle's answer to the slot's chain, with the faults of now. */
static void expect_req(const struct limits *lim, struct slot *s)
{
	expect_chain(lim, &s->c, &s->e);
	fault_adjust(&s->e, s->c.wlen ? s->c.wlen - 1 : 0);
}

/* Fill every queue with new chains while the budget lasts; publish. */
static unsigned int fill(struct dev *d, struct shadow *sh, bool more)
{
	unsigned int placed = 0;

	for (unsigned int i = 0; i < d->nq; i++) {
		struct fq *q = &d->q[i];

		for (;;) {
			int si = q->pending;

			if (si < 0) {
				if (!more || !budget_left())
					break;
				si = take_slot(q);
				if (si < 0)
					break;
				gen_chain(&d->lim, next_index++, &q->slots[si].c);
			}
			/* Expected with the limits, backend and faults of now. */
			expect_req(&d->lim, &q->slots[si]);
			q->slots[si].sh = sh;
			q->slots[si].ambiguous = false;
			if (!place(q, (unsigned int)si)) {
				q->pending = si;
				break;
			}
			q->pending = -1;
			placed++;
		}
		publish(d, q);
	}
	return placed;
}

static unsigned int inflight(const struct dev *d)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < d->nq; i++)
		n += d->q[i].inflight;
	return n;
}

static void stall_report(struct dev *d, const char *where)
{
	char list[256];
	size_t len = 0;

	list[0] = 0;
	for (unsigned int i = 0; i < d->nq; i++)
		for (unsigned int k = 0; k < d->q[i].nslots && len < sizeof(list) - 32; k++)
			if (d->q[i].slots[k].busy)
				len += (size_t)snprintf(list + len, sizeof(list) - len, " q%u:%" PRIu64,
							i, d->q[i].slots[k].c.index);
	report("stall", NULL, -1, 0, "%s: %u requests in flight, none completed in %.0f s; "
	       "chains%s", where, inflight(d), opt.stall, list);
}

/*
 * --fault power-off=PATH@N: write "0" to PATH (null_blk's configfs power:
 * del_gendisk() with the device open and requests in flight).
 */
static void power_off(struct dev *d)
{
	int fd;

	power_started = true;
	fprintf(stderr, "vblk-fuzz: %" PRIu64 " requests: powering %s off, %u in flight\n",
		st.requests, opt.power_path, inflight(d));
	watch("the write of 0 to the backend's power", 120);
	fd = open(opt.power_path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, "0\n", 2) != 2)
		die("power-off: %s: %s", opt.power_path, strerror(errno));
	close(fd);
	unwatch();
	power_off_done = true;
}

/*
 * Reap and wait until nothing is in flight (or, with @more, keep the queues
 * full until the budget is spent).  A vq error on a valid ring is a
 * failure; so is no completion for opt.stall seconds.  Returns false on a
 * stall.
 */
static bool pump(struct dev *d, struct shadow *sh, bool more, bool vq_err_ok)
{
	uint64_t last = now_ns();

	for (;;) {
		unsigned int done = 0, errs;
		bool errq[MAX_QUEUES] = { false };

		fill(d, sh, more);
		for (unsigned int i = 0; i < d->nq; i++)
			done += reap(&d->q[i]);
		if (opt.fault == F_POWER_OFF && !power_started && st.requests >= opt.power_at)
			power_off(d);
		if (done) {
			last = now_ns();
			progress(false);
			continue;
		}
		if (!inflight(d) && !(more && budget_left()))
			return true;
		errs = wait_any(d, 200, errq);
		if (errs) {
			st.vq_errors += errs;
			if (!vq_err_ok)
				for (unsigned int i = 0; i < d->nq; i++)
					if (errq[i])
						report("vq-error", NULL, -1, 0, "queue %u: the device "
						       "signalled the error eventfd for a valid ring", i);
		}
		if (inflight(d) && (double)(now_ns() - last) / 1e9 > opt.stall) {
			stall_report(d, "requests");
			return false;
		}
	}
}

/* Read the whole shadowed region back through the device, 128 KiB at a time. */
static bool sweep(struct dev *d, struct shadow *sh)
{
	uint64_t chunk = opt.max_sectors < 256 ? opt.max_sectors : 256, lbs_s = d->lim.lbs / SECTOR;
	struct fq *q = &d->q[0];

	for (uint64_t sec = 0; sec + lbs_s <= sh->sectors; sec += chunk) {
		uint64_t n = sh->sectors - sec < chunk ? sh->sectors - sec : chunk;
		int si;

		n = n / lbs_s * lbs_s;
		si = take_slot(q);
		if (si < 0) {
			if (!pump(d, sh, false, false))
				return false;
			si = take_slot(q);
		}
		make_read(&q->slots[si], sec, (uint32_t)(n * SECTOR));
		expect_req(&d->lim, &q->slots[si]);
		q->slots[si].sh = sh;
		if (!place(q, (unsigned int)si))
			die("internal: no descriptors for the sweep");
		publish(d, q);
		st.sweep_reads++;
	}
	return pump(d, sh, false, false);
}

static double tv_sec(struct timeval tv)
{
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

/* CPU time at the start of the measured phase, and the set-up's wall time. */
static struct rusage ru_self0, ru_thread0;
static uint64_t t_process0;
static uint64_t t_filled_ns;	/* the set-up's time writing the initial data */

static void measure_start(void)
{
	t_start = last_progress_ns = now_ns();
	getrusage(RUSAGE_SELF, &ru_self0);
	getrusage(RUSAGE_THREAD, &ru_thread0);
}

static void print_summary(const char *mode, double secs, bool ok, const char *error)
{
	uint64_t req = st.requests;
	struct rusage self, thread;

	/* Where the time went: this thread (generation, checks, syscalls) and the vhost workers. */
	getrusage(RUSAGE_SELF, &self);
	getrusage(RUSAGE_THREAD, &thread);

	printf("{\"tool\": \"vblk-fuzz\", \"mode\": \"%s\", \"ok\": %s, \"error\": ", mode,
	       ok ? "true" : "false");
	json_str(stdout, error);
	printf(", \"seed\": %" PRIu64 ", \"requests\": %" PRIu64 ", \"chains\": %" PRIu64
	       ", \"seconds\": %.3f, \"rate\": %.1f, \"status\": {\"ok\": %" PRIu64
	       ", \"ioerr\": %" PRIu64 ", \"unsupp\": %" PRIu64 ", \"none\": %" PRIu64 "}"
	       ", \"mismatches\": %" PRIu64 ", \"data_mismatches\": %" PRIu64
	       ", \"poisoned\": %" PRIu64 ", \"id_mismatches\": %" PRIu64 ", \"vq_errors\": %" PRIu64
	       ", \"bad_used\": %" PRIu64 ", \"failures\": %" PRIu64
	       ", \"verified_sectors\": %" PRIu64 ", \"skipped_sectors\": %" PRIu64
	       ", \"sweep_reads\": %" PRIu64 ", \"kicks\": %" PRIu64 ", \"waits\": %" PRIu64
	       ", \"ring\": {\"used\": %" PRIu64 ", \"error\": %" PRIu64 ", \"served_after\": %"
	       PRIu64 ", \"used_and_error\": %" PRIu64 ", \"error_again\": %" PRIu64 "}, \"lifecycle_actions\": %" PRIu64 ", \"expected_ioctl_errors\": %" PRIu64
	       ", \"dropped\": %" PRIu64 ", \"queues\": %u, \"workers\": %u, \"depth\": %u"
	       ", \"cpu\": {\"main_user\": %.2f, \"main_sys\": %.2f, \"others_user\": %.2f"
	       ", \"others_sys\": %.2f, \"main_minflt\": %ld, \"minflt\": %ld"
	       ", \"main_vcsw\": %ld, \"main_ivcsw\": %ld}, \"setup_s\": %.1f, \"fill_s\": %.1f, \"wait_s\": %.2f, \"wait_timeouts\": %" PRIu64
	       ", \"lat_mean_ms\": %.2f, \"lat_max_ms\": %.1f, \"slowest\": {\"index\": %" PRIu64
	       ", \"label\": \"%s\"}, \"fault\": {\"expected\": %" PRIu64 ", \"failed\": %" PRIu64
	       ", \"dropped\": %" PRIu64 ", \"power_off\": %s}}\n",
	       opt.seed, req, next_index, secs, secs > 0 ? (double)req / secs : 0.0, st.status[0],
	       st.status[1], st.status[2], st.status[3], st.mismatches, st.data_mismatches,
	       st.poisoned, st.id_mismatches, st.vq_errors, st.bad_used, n_failures,
	       st.verified_sectors, st.skipped_sectors, st.sweep_reads, st.kicks, st.waits,
	       st.ring_used, st.ring_err, st.ring_valid_after, st.ring_used_and_err,
	       st.ring_err_again,
	       st.lifecycle_actions,
	       st.ioctl_errors_expected, st.dropped, opt.queues, opt.workers, opt.depth,
	       tv_sec(thread.ru_utime) - tv_sec(ru_thread0.ru_utime),
	       tv_sec(thread.ru_stime) - tv_sec(ru_thread0.ru_stime),
	       tv_sec(self.ru_utime) - tv_sec(thread.ru_utime) -
	       (tv_sec(ru_self0.ru_utime) - tv_sec(ru_thread0.ru_utime)),
	       tv_sec(self.ru_stime) - tv_sec(thread.ru_stime) -
	       (tv_sec(ru_self0.ru_stime) - tv_sec(ru_thread0.ru_stime)),
	       thread.ru_minflt - ru_thread0.ru_minflt, self.ru_minflt - ru_self0.ru_minflt,
	       thread.ru_nvcsw - ru_thread0.ru_nvcsw, thread.ru_nivcsw - ru_thread0.ru_nivcsw,
	       (double)(t_start - t_process0) / 1e9, (double)t_filled_ns / 1e9,
	       (double)st.wait_ns / 1e9,
	       st.wait_timeouts, req ? (double)st.lat_sum_ns / (double)req / 1e6 : 0.0,
	       (double)st.lat_max_ns / 1e6, st.lat_max_index, st.lat_max_label,
	       st.fault_expected, st.fault_failed, st.fault_dropped,
	       power_off_done ? "true" : "false");
	fflush(stdout);
}

static struct dev dv;

/* Open the backend(s), lay out the device and start it. */
static void setup_fuzz_device(unsigned int nq)
{
	bdev_fds[0] = open_bdev(opt.dev, &bdev_ro[0]);
	dev_layout(&dv, nq, opt.depth, opt.ring_num);
	dev_start(&dv, bdev_fds[0], opt.workers);
	limits_from(&dv.lim, &dv.cfg, dv.features, bdev_ro[0]);
	if (dv.lim.lbs < SECTOR || dv.lim.lbs & (dv.lim.lbs - 1))
		die("the backend's block size %u is not a power of two", dv.lim.lbs);
	shadow_init(&shadows[0], region_sectors(&dv.lim));
	t_filled_ns = now_ns();
	fill_region(opt.fill_dev ? opt.fill_dev : opt.dev, &shadows[0], 0);
	t_filled_ns = now_ns() - t_filled_ns;
}

static int run_fuzz(void)
{
	double secs;
	bool ok;

	setup_fuzz_device(opt.queues);
	measure_start();
	progress(true);		/* "0 requests": the queues are about to fill */
	ok = pump(&dv, &shadows[0], true, false);
	secs = (double)(now_ns() - t_start) / 1e9;
	if (ok)
		ok = sweep(&dv, &shadows[0]);
	dev_close(&dv);
	ok = ok && !n_failures;
	print_summary("fuzz", secs, ok, ok ? "" : "see the failure lines");
	return ok ? 0 : 1;
}

/* ---- main -------------------------------------------------------------------------------- */

static int run_ring(void);
static int run_lifecycle(void);
static int run_replay(void);

static void usage(void)
{
	fprintf(stderr,
		"usage: vblk-fuzz --emit N [--first I] [limits] [--seed S]\n"
		"       vblk-fuzz --dev /dev/BDEV [--vhost PATH] [options]      request fuzzing\n"
		"       vblk-fuzz --dev /dev/BDEV --ring N [options]             broken rings\n"
		"       vblk-fuzz --dev A --dev2 B --lifecycle [options]         ioctls under load\n"
		"       vblk-fuzz --dev /dev/BDEV --replay SEED:N [--shrink]     one chain again\n"
		"options: --seed S (1) --requests N (50000) --seconds S (no limit) --queues N (4)\n"
		"         --workers N (2) --depth N per queue (32) --ring-num N (512)\n"
		"         --max-sectors N (256) --region BYTES (16 MiB) --no-discard\n"
		"         --no-write-zeroes --read-only --stall S (60) --max-failures N (20)\n"
		"         --fault error-writes|drop-writes|badblocks=A-B[,C-D]|may-fail|\n"
		"                 power-off=PATH@N (what the backend does wrong)\n"
		"         --fill-dev PATH (the initial data goes there: the device under dm)\n"
		"limits for --emit: --capacity SECTORS (131072) --lbs N (512)\n"
		"         --max-discard-sectors N (0) --max-discard-seg N (256)\n"
		"         --max-wz-sectors N (0) --max-wz-seg N (256)\n");
	exit(2);
}

static uint64_t parse_num(const char *name, const char *s, uint64_t lo, uint64_t hi)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || *end || end == s || v < lo || v > hi)
		die("--%s %s: expected a whole number from %" PRIu64 " to %" PRIu64, name, s, lo, hi);
	return v;
}

/* --fault error-writes | drop-writes | badblocks=A-B[,C-D...] | may-fail | power-off=PATH@N */
static void parse_fault(char *arg)
{
	char *val = strchr(arg, '=');

	if (val)
		*val++ = 0;
	if (!strcmp(arg, "error-writes") && !val) {
		opt.fault = F_ERROR_WRITES;
	} else if (!strcmp(arg, "drop-writes") && !val) {
		opt.fault = F_DROP_WRITES;
	} else if (!strcmp(arg, "may-fail") && !val) {
		opt.fault = F_MAY_FAIL;
	} else if (!strcmp(arg, "badblocks") && val) {
		opt.fault = F_BADBLOCKS;
		for (char *tok = strtok(val, ","); tok; tok = strtok(NULL, ",")) {
			char *dash = strchr(tok, '-');

			if (!dash || opt.nbad == N_OF(opt.bad))
				die("--fault badblocks: A-B[,C-D...], at most %zu ranges", N_OF(opt.bad));
			*dash = 0;
			opt.bad[opt.nbad][0] = parse_num("fault", tok, 0, UINT64_MAX / 2);
			opt.bad[opt.nbad][1] = parse_num("fault", dash + 1, opt.bad[opt.nbad][0],
							 UINT64_MAX / 2);
			opt.nbad++;
		}
	} else if (!strcmp(arg, "power-off") && val && strchr(val, '@')) {
		char *at = strrchr(val, '@');

		*at = 0;
		opt.fault = F_POWER_OFF;
		opt.power_path = val;
		opt.power_at = parse_num("fault", at + 1, 0, UINT64_MAX / 2);
	} else {
		die("--fault %s: error-writes, drop-writes, badblocks=A-B[,...], may-fail or "
		    "power-off=PATH@N", arg);
	}
}

/* The options that decide the chains and the limits, for the replay line of a failure. */
static void make_argv_line(void)
{
	size_t n = 0;

#define ADD(...) (n += (size_t)snprintf(argv_line + n, sizeof(argv_line) - n, __VA_ARGS__))
	if (opt.dev)
		ADD(" --dev %s", opt.dev);
	if (strcmp(opt.vhost, "/dev/vhost-blk"))
		ADD(" --vhost %s", opt.vhost);
	if (opt.max_sectors != 256)
		ADD(" --max-sectors %u", opt.max_sectors);
	if (opt.region != (16u << 20))
		ADD(" --region %" PRIu64, opt.region);
	if (!opt.discard)
		ADD(" --no-discard");
	if (!opt.write_zeroes)
		ADD(" --no-write-zeroes");
	if (opt.read_only)
		ADD(" --read-only");
#undef ADD
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "vhost", required_argument, NULL, 'V' },
		{ "dev", required_argument, NULL, 'd' },
		{ "dev2", required_argument, NULL, 'D' },
		{ "queues", required_argument, NULL, 'q' },
		{ "workers", required_argument, NULL, 'w' },
		{ "depth", required_argument, NULL, 'i' },
		{ "ring-num", required_argument, NULL, 'n' },
		{ "requests", required_argument, NULL, 'N' },
		{ "seconds", required_argument, NULL, 'S' },
		{ "seed", required_argument, NULL, 's' },
		{ "emit", required_argument, NULL, 'e' },
		{ "first", required_argument, NULL, 'f' },
		{ "ring", required_argument, NULL, 'r' },
		{ "lifecycle", no_argument, NULL, 'L' },
		{ "replay", required_argument, NULL, 'R' },
		{ "shrink", no_argument, NULL, 'k' },
		{ "max-sectors", required_argument, NULL, 'm' },
		{ "region", required_argument, NULL, 'g' },
		{ "no-discard", no_argument, NULL, 'X' },
		{ "no-write-zeroes", no_argument, NULL, 'Z' },
		{ "read-only", no_argument, NULL, 'O' },
		{ "stall", required_argument, NULL, 't' },
		{ "max-failures", required_argument, NULL, 'F' },
		{ "capacity", required_argument, NULL, 'c' },
		{ "lbs", required_argument, NULL, 'l' },
		{ "max-discard-sectors", required_argument, NULL, '1' },
		{ "max-discard-seg", required_argument, NULL, '2' },
		{ "max-wz-sectors", required_argument, NULL, '3' },
		{ "max-wz-seg", required_argument, NULL, '4' },
		{ "fault", required_argument, NULL, 'x' },
		{ "fill-dev", required_argument, NULL, 'P' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	pthread_t wd;
	int c;

	t_process0 = now_ns();
	while ((c = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
		switch (c) {
		case 'V': opt.vhost = optarg; break;
		case 'd': opt.dev = optarg; break;
		case 'D': opt.dev2 = optarg; break;
		case 'q': opt.queues = (unsigned int)parse_num("queues", optarg, 1, MAX_QUEUES); break;
		case 'w': opt.workers = (unsigned int)parse_num("workers", optarg, 1, MAX_QUEUES); break;
		case 'i': opt.depth = (unsigned int)parse_num("depth", optarg, 1, 256); break;
		case 'n':
			opt.ring_num = (unsigned int)parse_num("ring-num", optarg, 64, 32768);
			if (opt.ring_num & (opt.ring_num - 1))
				die("--ring-num %u: not a power of two", opt.ring_num);
			break;
		case 'N': opt.requests = parse_num("requests", optarg, 1, UINT64_MAX / 2); break;
		case 'S': opt.seconds = (double)parse_num("seconds", optarg, 1, 1000000); break;
		case 's': opt.seed = parse_num("seed", optarg, 0, UINT64_MAX); break;
		case 'e':
			opt.mode = M_EMIT;
			opt.count = parse_num("emit", optarg, 1, UINT64_MAX / 4);
			break;
		case 'f': opt.first = parse_num("first", optarg, 0, UINT64_MAX / 4); break;
		case 'r':
			opt.mode = M_RING;
			opt.count = parse_num("ring", optarg, 1, UINT64_MAX / 4);
			break;
		case 'L': opt.mode = M_LIFECYCLE; break;
		case 'R': {
			char *colon = strchr(optarg, ':');

			if (!colon)
				die("--replay %s: expected SEED:INDEX", optarg);
			*colon = 0;
			opt.seed = parse_num("replay", optarg, 0, UINT64_MAX);
			opt.replay_index = parse_num("replay", colon + 1, 0, (1ull << 62) - 1);
			opt.mode = M_REPLAY;
			break;
		}
		case 'k': opt.shrink = true; break;
		case 'm': opt.max_sectors = (unsigned int)parse_num("max-sectors", optarg, 8, 2048);
			break;
		case 'g': opt.region = parse_num("region", optarg, 4096, 1ull << 32); break;
		case 'X': opt.discard = false; break;
		case 'Z': opt.write_zeroes = false; break;
		case 'O': opt.read_only = true; break;
		case 't': opt.stall = (double)parse_num("stall", optarg, 1, 3600); break;
		case 'F': opt.max_failures = (unsigned int)parse_num("max-failures", optarg, 0, 1000000);
			break;
		case 'c': opt.capacity = parse_num("capacity", optarg, 1, UINT64_MAX >> 10); break;
		case 'l':
			opt.lbs = (unsigned int)parse_num("lbs", optarg, 512, 65536);
			if (opt.lbs & (opt.lbs - 1))
				die("--lbs %u: not a power of two", opt.lbs);
			break;
		case '1': opt.max_discard_sectors = (unsigned int)parse_num("max-discard-sectors",
							optarg, 0, UINT32_MAX); break;
		case '2': opt.max_discard_seg = (unsigned int)parse_num("max-discard-seg", optarg, 0,
							UINT32_MAX); break;
		case '3': opt.max_wz_sectors = (unsigned int)parse_num("max-wz-sectors", optarg, 0,
							UINT32_MAX); break;
		case '4': opt.max_wz_seg = (unsigned int)parse_num("max-wz-seg", optarg, 0,
							UINT32_MAX); break;
		case 'x': parse_fault(optarg); break;
		case 'P': opt.fill_dev = optarg; break;
		case 'v': opt.verbose = true; break;
		default: usage();
		}
	}
	if (optind != argc)
		usage();
	opt.region -= opt.region % 4096;
	if (opt.workers > opt.queues)
		opt.workers = opt.queues;
	rmax = HDR_LEN + (opt.max_sectors * SECTOR > 65536 ? opt.max_sectors * SECTOR : 65536) + 8192;
	wmax = (opt.max_sectors * SECTOR > 65536 ? opt.max_sectors * SECTOR : 65536) + 4096;
	gather_buf = malloc(wmax);
	if (!gather_buf)
		die("out of memory");
	make_argv_line();
	if (opt.fault != F_NONE && opt.mode != M_FUZZ && opt.mode != M_EMIT)
		die("--fault is for request fuzzing (and --emit) only");
	if (opt.mode == M_EMIT)
		return run_emit();
	if (!opt.dev)
		die("--dev /dev/BLOCKDEVICE is needed (or --emit N)");
	if (opt.mode == M_LIFECYCLE && !opt.dev2)
		die("--lifecycle needs --dev2, a second backend of the same size");
	signal(SIGPIPE, SIG_IGN);
	if (pthread_create(&wd, NULL, watchdog, NULL))
		die("pthread_create failed");
	switch (opt.mode) {
	case M_RING:
		return run_ring();
	case M_LIFECYCLE:
		return run_lifecycle();
	case M_REPLAY:
		return run_replay();
	default:
		return run_fuzz();
	}
}



/* ---- --ring: broken rings ------------------------------------------------------------------------ */

#define RING_NUM	16

static const uint16_t flag_sets[] = { 0, DESC_F_NEXT, DESC_F_WRITE, DESC_F_NEXT | DESC_F_WRITE,
				      DESC_F_INDIRECT, DESC_F_INDIRECT | DESC_F_NEXT };

/* An address: in the scratch area, at its end, 0, just outside the memory, anything. */
static uint64_t raw_addr(struct rng *r, const struct dev *d, uint64_t lo)
{
	uint64_t base = gpa(d->mem.base), end = base + d->mem.size;

	switch (below(r, 6)) {
	case 0: case 1:
		return between(r, lo, end - 1);
	case 2:
		return end - 8;
	case 3:
		return 0;
	case 4:
		return chance(r, 1, 2) ? end : base - 4096;
	default:
		return rnd(r);
	}
}

static uint32_t raw_len(struct rng *r)
{
	static const uint32_t lens[] = { 0, 1, 15, 16, 17, 512, 4096, UINT32_MAX };

	return chance(r, 1, 2) ? lens[below(r, N_OF(lens))] : (uint32_t)rnd(r);
}

/*
 * Write broken chain @index into queue @q's descriptor table (entries 0 to
 * n - 1) and an indirect table in the scratch area; returns the head to
 * publish (maybe past the ring) and, in *avail_step, how far to move the
 * avail idx (1, or past the ring for a bad avail idx).
 */
static uint32_t ring_chain(struct rng *r, struct dev *d, struct fq *q, uint8_t *scratch,
			   uint16_t *avail_step, char *label, size_t lsize)
{
	struct desc *t = q->r.desc, *ind = (struct desc *)scratch;
	uint64_t lo = gpa(scratch + 4096), hdr = gpa(scratch + 8192);
	unsigned int n = (unsigned int)between(r, 1, 6), kind = (unsigned int)below(r, 11);

	*avail_step = 1;
	memset(t, 0, vr_desc_size(q->r.num));
	/* A plausible request header for the chains that are otherwise sane. */
	put_hdr(scratch + 8192, BLK_T_IN, 0, 0);
	switch (kind) {
	case 0:		/* test_fuzz.py's raw_chain(): anything */
		for (unsigned int i = 0; i < n; i++) {
			uint64_t nx = chance(r, 1, 2) ? between(r, 0, n) : below(r, 0x10000);

			t[i] = (struct desc){ raw_addr(r, d, lo), raw_len(r),
					      flag_sets[below(r, N_OF(flag_sets))], (uint16_t)nx };
		}
		snprintf(label, lsize, "raw %u descriptors", n);
		return 0;
	case 1:		/* a loop */
		for (unsigned int i = 0; i < n; i++)
			t[i] = (struct desc){ hdr, 16, DESC_F_NEXT | (i ? DESC_F_WRITE : 0),
					      (uint16_t)((i + 1) % n) };
		if (chance(r, 1, 2))
			t[n - 1].next = (uint16_t)below(r, n);
		snprintf(label, lsize, "loop of %u descriptors", n);
		return 0;
	case 2:		/* next past the ring */
		for (unsigned int i = 0; i < n; i++)
			t[i] = (struct desc){ hdr, 16, DESC_F_NEXT, (uint16_t)(i + 1) };
		t[n - 1].next = (uint16_t)between(r, q->r.num, 0xffff);
		snprintf(label, lsize, "next %u past a ring of %u", t[n - 1].next, q->r.num);
		return 0;
	case 3:		/* the head past the ring */
		snprintf(label, lsize, "head past the ring");
		return (uint32_t)between(r, q->r.num, 0xffff);
	case 4:		/* an address outside the memory table */
		t[0] = (struct desc){ hdr, 16, DESC_F_NEXT, 1 };
		t[1] = (struct desc){ chance(r, 1, 2) ? 0x1000 : gpa(d->mem.base) + d->mem.size,
				      (uint32_t)between(r, 1, 4096), DESC_F_WRITE, 0 };
		if (chance(r, 1, 2)) {
			t[0].addr = t[1].addr;
			t[1].addr = hdr;
		}
		snprintf(label, lsize, "address outside the memory table");
		return 0;
	case 5:		/* nested indirect tables */
		ind[0] = (struct desc){ hdr, 16, DESC_F_NEXT, 1 };
		ind[1] = (struct desc){ gpa(ind + 4), 32, DESC_F_INDIRECT, 0 };
		ind[4] = (struct desc){ hdr, 1, DESC_F_WRITE, 0 };
		t[0] = (struct desc){ gpa(ind), 32, DESC_F_INDIRECT, 0 };
		snprintf(label, lsize, "nested indirect table");
		return 0;
	case 6: {	/* an odd-sized (or empty, or huge) indirect table */
		uint32_t len = (uint32_t[]){ 0, 1, 15, 17, 33, 16 * 3 + 8, 0xfffffff0u }[below(r, 7)];

		ind[0] = (struct desc){ hdr, 16, DESC_F_NEXT, 1 };
		ind[1] = (struct desc){ hdr + 16, 1, DESC_F_WRITE, 0 };
		t[0] = (struct desc){ gpa(ind), len, DESC_F_INDIRECT, 0 };
		snprintf(label, lsize, "indirect table of %u bytes", len);
		return 0;
	}
	case 7:		/* readable after writable */
		t[0] = (struct desc){ hdr, 16, DESC_F_NEXT, 1 };
		t[1] = (struct desc){ hdr + 16, 512, DESC_F_NEXT | DESC_F_WRITE, 2 };
		t[2] = (struct desc){ hdr + 1024, 512, DESC_F_NEXT, 3 };
		t[3] = (struct desc){ hdr + 2048, 1, DESC_F_WRITE, 0 };
		if (chance(r, 1, 2)) {	/* the same inside an indirect table */
			memcpy(ind, t, 4 * sizeof(*t));
			memset(t, 0, 4 * sizeof(*t));
			t[0] = (struct desc){ gpa(ind), 64, DESC_F_INDIRECT, 0 };
		}
		snprintf(label, lsize, "readable after writable");
		return 0;
	case 8:		/* a bad avail idx: further than the ring size ahead */
		t[0] = (struct desc){ hdr, 16, DESC_F_NEXT, 1 };
		t[1] = (struct desc){ hdr + 16, 1, DESC_F_WRITE, 0 };
		*avail_step = (uint16_t)between(r, q->r.num + 1, 0xffff);
		snprintf(label, lsize, "avail idx moved by %u", *avail_step);
		return 0;
	case 9:		/* an indirect table outside the memory table */
		t[0] = (struct desc){ raw_addr(r, d, lo), (uint32_t)between(r, 1, 8) * 16,
				      DESC_F_INDIRECT, 0 };
		if (t[0].addr >= lo && t[0].addr + t[0].len <= gpa(d->mem.base) + d->mem.size)
			t[0].addr = 0x1000;
		snprintf(label, lsize, "indirect table at %#" PRIx64, t[0].addr);
		return 0;
	default:	/* an indirect descriptor chained on, or after direct ones */
		ind[0] = (struct desc){ hdr, 16, DESC_F_NEXT, 1 };
		ind[1] = (struct desc){ hdr + 16, 1, DESC_F_WRITE, 0 };
		if (chance(r, 1, 2)) {
			t[0] = (struct desc){ gpa(ind), 32, DESC_F_INDIRECT | DESC_F_NEXT, 1 };
			t[1] = (struct desc){ hdr + 32, 1, DESC_F_WRITE, 0 };
			snprintf(label, lsize, "indirect head with NEXT");
		} else {
			t[0] = (struct desc){ hdr, 16, DESC_F_NEXT, 1 };
			t[1] = (struct desc){ gpa(ind), 32, DESC_F_INDIRECT, 0 };
			snprintf(label, lsize, "indirect descriptor inside a chain");
		}
		return 0;
	}
}

/*
 * Errors signalled since the example's answer: on its queue, the broken
 * chain walked again (counted); on another queue, a failure.
 */
static void ring_other_errors(struct fq *q, uint64_t i, const char *label)
{
	for (unsigned int k = 0; k < dv.nq; k++) {
		if (!drain_eventfd(dv.q[k].err_fd))
			continue;
		if (&dv.q[k] == q) {
			st.ring_err_again++;
			continue;
		}
		st.vq_errors++;
		report("vq-error", NULL, -1, 0, "ring chain %" PRIu64 " (%s) on queue %u made "
		       "queue %u signal an error", i, label, q->index, k);
	}
}

/* The restart after a stop, with queue @q's rings cleared (the backend is stopped). */
static void ring_reset_queue(struct dev *d, struct fq *q)
{
	struct vhost_vring_state st_base = { q->index, 0 };

	vr_ring_clear(&q->r);
	fq_reset(q, 0);
	must(vr_ioctl(d->fd, VHOST_SET_VRING_BASE, &st_base), "VHOST_SET_VRING_BASE");
	watch("VHOST_BLK_SET_BACKEND after a broken ring", 60);
	must(vr_set_backend(d->fd, bdev_fds[0]), "VHOST_BLK_SET_BACKEND");
}

/*
 * A flush and a GET_ID on @q: the device still serves the queue, and no
 * queue signals an error any more (ring chain @i, @label, was the last).
 */
static bool ring_still_serves(struct dev *d, struct fq *q, uint64_t i, const char *label)
{
	uint64_t errs = st.vq_errors;

	for (int k = 0; k < 2; k++) {
		int si = take_slot(q);
		struct chain *c = &q->slots[si].c;

		c->index = sweep_index++;
		c->nbufs = 0;
		c->wlen = 0;
		c->indirect = false;
		c->rlen = put_hdr(c->rbytes, k ? BLK_T_GET_ID : BLK_T_FLUSH, 0, 0);
		add_buf(c, false, 0, HDR_LEN, 16, 0);
		if (k)
			add_buf(c, true, 0, BLK_ID_BYTES, 16, 0);
		add_buf(c, true, 0, 1, 16, 0);
		snprintf(c->label, sizeof(c->label), "%s after a broken ring", k ? "get_id" : "flush");
		expect_chain(&d->lim, c, &q->slots[si].e);
		q->slots[si].sh = &shadows[0];
		if (!place(q, (unsigned int)si))
			die("internal: no descriptors after a queue reset");
	}
	publish(d, q);
	if (!pump(d, &shadows[0], false, true))
		return false;
	/* After the restart no queue holds a broken chain: any error is a failure. */
	if (st.vq_errors != errs)
		report("vq-error", NULL, -1, 0, "after ring chain %" PRIu64 " (%s) on queue %u and "
		       "the queue's reset, %" PRIu64 " error eventfds for valid chains", i, label,
		       q->index, st.vq_errors - errs);
	st.ring_valid_after++;
	return true;
}

static int run_ring(void)
{
	uint64_t t0;
	double secs;
	bool ok = true;

	bdev_fds[0] = open_bdev(opt.dev, &bdev_ro[0]);
	dev_layout(&dv, opt.queues, 4, RING_NUM);
	dev_start(&dv, bdev_fds[0], opt.workers);
	limits_from(&dv.lim, &dv.cfg, dv.features, bdev_ro[0]);
	shadow_init(&shadows[0], 0);
	measure_start();
	t0 = t_start;
	for (uint64_t i = 0; i < opt.count && ok; i++) {
		struct rng r = stream(2, i);
		struct fq *q = &dv.q[below(&r, dv.nq)];
		uint8_t *scratch = q->slots[0].arena;
		char label[96];
		uint16_t step;
		uint32_t head = ring_chain(&r, &dv, q, scratch, &step, label, sizeof(label));
		uint64_t deadline = now_ns() + 20ull * 1000000000ull, one = 1;
		bool used = false, err = false;

		if (opt.seconds && (double)(now_ns() - t0) / 1e9 > opt.seconds)
			break;
		q->r.avail[2 + q->avail_idx % q->r.num] = (uint16_t)head;
		q->avail_idx += step;
		__atomic_store_n(&q->r.avail[1], q->avail_idx, __ATOMIC_RELEASE);
		if (write(q->kick_fd, &one, 8) != 8)
			die("kick: %s", strerror(errno));
		while (!used && !err) {
			struct pollfd pfd[2] = { { .fd = q->call_fd, .events = POLLIN },
						 { .fd = q->err_fd, .events = POLLIN } };

			used = vr_used_idx(&q->r) != q->last_used;
			if (used)
				break;
			if (poll(pfd, 2, 100) > 0) {
				drain_eventfd(q->call_fd);
				err = (pfd[1].revents & POLLIN) && drain_eventfd(q->err_fd);
			}
			if (now_ns() > deadline) {
				report("ring-hang", NULL, -1, 0, "ring chain %" PRIu64 " (%s) on queue "
				       "%u: neither a used entry nor the error eventfd in 20 s", i,
				       label, q->index);
				ok = false;
				break;
			}
		}
		if (used) {
			struct used_elem ue = q->r.used_ring[q->last_used % q->r.num];

			st.ring_used++;
			/* An error eventfd as well, for the same chain? */
			usleep(100000);
			if (drain_eventfd(q->err_fd)) {
				st.ring_used_and_err++;
				fprintf(stderr, "ring %" PRIu64 " q%u %s: a used entry and the error "
					"eventfd\n", i, q->index, label);
			}
			if (head < q->r.num && step == 1 && ue.id != head) {
				st.bad_used++;
				report("bad-used-id", NULL, -1, ue.len, "ring chain %" PRIu64 " (%s): "
				       "used id %u, head %u", i, label, ue.id, head);
			}
		} else if (err) {
			st.ring_err++;
		}
		if (opt.verbose)
			fprintf(stderr, "ring %" PRIu64 " q%u %s: %s\n", i, q->index, label,
				used ? "used entry" : err ? "error eventfd" : "nothing");
		if (!ok)
			break;
		/*
		 * The broken chain stays in the ring until the reset below, and
		 * the device may walk it again (and signal again) whenever its
		 * kick handler runs: errors of this queue until the stop are the
		 * chain's.  Other queues are not disturbed.
		 */
		usleep(50000);
		ring_other_errors(q, i, label);
		if (chance(&r, 1, 8)) {
			/* Or the whole device: close it with the broken ring and start again. */
			dev_close(&dv);
			for (unsigned int k = 0; k < dv.nq; k++) {
				vr_ring_clear(&dv.q[k].r);
				fq_reset(&dv.q[k], 0);
			}
			dev_start(&dv, bdev_fds[0], opt.workers);
		} else {
			watch("VHOST_BLK_SET_BACKEND -1 after a broken ring", 60);
			must(vr_set_backend(dv.fd, -1), "VHOST_BLK_SET_BACKEND -1");
			ring_other_errors(q, i, label);
			ring_reset_queue(&dv, q);
		}
		ok = ring_still_serves(&dv, q, i, label);
		next_index = i + 1;
	}
	secs = (double)(now_ns() - t0) / 1e9;
	/* Requests: the ring chains; the statuses are those of the checks after each. */
	st.requests = next_index;
	dev_close(&dv);
	ok = ok && !n_failures;
	print_summary("ring", secs, ok, ok ? "" : "see the failure lines");
	return ok ? 0 : 1;
}

/* ---- --replay SEED:INDEX [--shrink] -------------------------------------------------------------- */

static struct chain master;	/* the chain being replayed (and shrunk) */

/*
 * Send the master chain alone on a fresh device (opened, set up and
 * started again); true if it failed a check or hung.  The memory of a
 * device closed with the chain still in flight stays mapped.
 */
static bool replay_once(struct slot **out)
{
	uint64_t before = n_failures, errs = st.vq_errors;
	struct fq *q;
	struct slot *s;
	uint8_t *rbytes;
	int si;

	last_status = NO_ANSWER;
	if (dv.fd >= 0) {
		bool busy = inflight(&dv) != 0;

		dev_close(&dv);
		if (!busy)
			gmem_destroy(&dv.mem);
	}
	dev_layout(&dv, 1, 4, opt.ring_num);
	dev_start(&dv, bdev_fds[0], 1);
	q = &dv.q[0];
	si = take_slot(q);
	s = &q->slots[si];
	rbytes = s->c.rbytes;
	s->c = master;
	s->c.rbytes = rbytes;
	memcpy(rbytes, master.rbytes, master.rlen);
	expect_chain(&dv.lim, &s->c, &s->e);
	s->sh = &shadows[0];
	s->ambiguous = false;
	*out = s;
	if (!place(q, (unsigned int)si))
		die("the chain needs more descriptors than the ring has");
	publish(&dv, q);
	if (!pump(&dv, &shadows[0], false, false))
		return true;
	return n_failures > before || st.vq_errors > errs;
}

static void replay_print(const char *what, const struct slot *s0, bool failed)
{
	printf("{\"tool\": \"vblk-fuzz\", \"mode\": \"replay\", \"%s\": true, \"failed\": %s, "
	       "\"seed\": %" PRIu64 ", ", what, failed ? "true" : "false", opt.seed);
	print_chain(stdout, &s0->c);
	printf(", \"expected\": {");
	print_expect(stdout, &s0->e);
	if (last_status == NO_ANSWER) {
		printf("}, \"actual\": null}\n");
	} else {
		printf("}, \"actual\": {\"status\": ");
		if (last_status < 0)
			printf("null");
		else
			printf("%d", last_status);
		printf(", \"used_len\": %u}}\n", last_used_len);
	}
	fflush(stdout);
}

/*
 * Simpler layouts of the same request, each kept if the chain still fails:
 * no empty descriptors, direct instead of indirect, adjacent buffers of one
 * direction merged, every buffer 16-byte aligned.  The readable bytes and
 * the writable length stay, so the oracle's answer stays.
 */
static bool shrink_step(struct chain *c, unsigned int step)
{
	struct chain o = *c;
	unsigned int n = 0;

	switch (step) {
	case 0:
		for (unsigned int i = 0; i < o.nbufs; i++)
			if (o.bufs[i].len || i == 0)
				c->bufs[n++] = o.bufs[i];
		c->nbufs = n;
		break;
	case 1:
		c->indirect = false;
		break;
	case 2:
		for (unsigned int i = 0; i < o.nbufs; i++) {
			if (n && c->bufs[n - 1].write == o.bufs[i].write) {
				c->bufs[n - 1].len += o.bufs[i].len;
				continue;
			}
			c->bufs[n++] = o.bufs[i];
		}
		c->nbufs = n;
		break;
	default:
		for (unsigned int i = 0; i < o.nbufs; i++) {
			c->bufs[i].align = 16;
			c->bufs[i].phase = 0;
		}
	}
	return memcmp(&o.bufs, &c->bufs, sizeof(o.bufs)) || o.nbufs != c->nbufs ||
	       o.indirect != c->indirect;
}

static int run_replay(void)
{
	struct chain keep;
	struct slot *s0;
	bool failed;

	opt.queues = opt.workers = 1;
	bdev_fds[0] = open_bdev(opt.dev, &bdev_ro[0]);
	dv.fd = -1;
	dev_layout(&dv, 1, 4, opt.ring_num);
	dev_start(&dv, bdev_fds[0], 1);
	limits_from(&dv.lim, &dv.cfg, dv.features, bdev_ro[0]);
	shadow_init(&shadows[0], region_sectors(&dv.lim));
	fill_region(opt.dev, &shadows[0], 0);
	measure_start();
	master.rbytes = malloc(rmax);
	keep.rbytes = malloc(rmax);
	if (!master.rbytes || !keep.rbytes)
		die("out of memory");
	gen_chain(&dv.lim, opt.replay_index, &master);
	next_index = 1;
	failed = replay_once(&s0);
	replay_print("replay", s0, failed);
	if (failed && opt.shrink) {
		for (unsigned int step = 0; step < 4; step++) {
			uint8_t *kb = keep.rbytes;

			keep = master;
			keep.rbytes = kb;
			if (!shrink_step(&master, step))
				continue;
			if (!replay_once(&s0)) {
				uint8_t *mb = master.rbytes;

				master = keep;
				master.rbytes = mb;
			}
		}
		replay_print("minimal", s0, replay_once(&s0));
	}
	dev_close(&dv);
	print_summary("replay", (double)(now_ns() - t_start) / 1e9, !failed,
		      failed ? "the chain fails: see the failure lines" : "");
	return failed ? 1 : 0;
}

/* ---- --lifecycle: ioctls with requests in flight -------------------------------------------------- */

static int cur_be;		/* the backend serving the queues, -1 while stopped */
static int next_be;		/* while stopped: the one the next start attaches */
static bool table_broken;	/* the memory table leaves out some buffers */
static uint64_t lc_state_since;	/* iteration of the last stop or table break */
static uint64_t lc_iter;
static unsigned int default_worker;	/* SET_OWNER's: the 16 - queues others stay on it */
static uint64_t lc_features;	/* features to ack (wanted_features() toggled) */
static int worker_of[MAX_QUEUES];	/* index into dv.workers of each queue's worker */
static const char *dev_paths[2];

/* An ioctl's return against the documented one. */
static void expect_ret(int ret, int want, const char *what)
{
	st.lifecycle_actions++;
	if (opt.verbose)
		fprintf(stderr, "lifecycle: %s -> %d (want %d)\n", what, ret, want);
	if (ret == want) {
		if (want)
			st.ioctl_errors_expected++;
		return;
	}
	report("ioctl", NULL, -1, 0, "%s returned %d (%s), expected %d (%s)", what, ret,
	       strerror(-ret), want, strerror(-want));
}

static void for_each_inflight(void (*fn)(struct slot *s, void *arg), void *arg)
{
	for (unsigned int i = 0; i < dv.nq; i++)
		for (unsigned int k = 0; k < dv.q[i].nslots; k++)
			if (dv.q[i].slots[k].busy)
				fn(&dv.q[i].slots[k], arg);
}

/* Untaken requests go to another backend (or get other limits): new expectations. */
static void retarget(struct slot *s, void *arg)
{
	struct shadow *nsh = arg;

	/* Not taken before the stop, so it did not run on either backend of a swap. */
	if (s->e.status == BLK_S_OK)
		for (unsigned int i = 0; i < s->e.nwrites; i++) {
			shadow_unregister(s->sh, &s->e.writes[i], ++gseq);
			if (s->ambiguous)
				shadow_unregister(s->sh2, &s->e.writes[i], gseq);
		}
	s->ambiguous = false;
	s->sh = nsh;
	expect_chain(&dv.lim, &s->c, &s->e);
	s->seq0 = ++gseq;
	if (s->e.status == BLK_S_OK)
		for (unsigned int i = 0; i < s->e.nwrites; i++)
			shadow_submit_write(s->sh, &s->e.writes[i], s->seq0);
}

/* A swap with requests in flight: each may run on either backend. */
static void make_ambiguous(struct slot *s, void *arg)
{
	struct shadow *other = arg;

	if (s->ambiguous)
		return;
	s->ambiguous = true;
	s->sh2 = other;
	if (s->e.status == BLK_S_OK)
		for (unsigned int i = 0; i < s->e.nwrites; i++)
			shadow_submit_write(other, &s->e.writes[i], ++gseq);
}

/* A request that will never run: RESET_OWNER or close left it in the ring. */
static void drop(struct slot *s, void *arg)
{
	struct fq *q = &dv.q[0];

	(void)arg;
	st.dropped++;
	if (s->e.status == BLK_S_OK)
		for (unsigned int i = 0; i < s->e.nwrites; i++) {
			shadow_unregister(s->sh, &s->e.writes[i], ++gseq);
			if (s->ambiguous)
				shadow_unregister(s->sh2, &s->e.writes[i], gseq);
		}
	for (unsigned int i = 0; i < dv.nq; i++)
		if (s >= dv.q[i].slots && s < dv.q[i].slots + dv.q[i].nslots)
			q = &dv.q[i];
	if (q->pending == (int)(s - q->slots))
		q->pending = -1;
	release_slot(q, (unsigned int)(s - q->slots));
}

static void reap_all(void)
{
	for (unsigned int i = 0; i < dv.nq; i++)
		reap(&dv.q[i]);
}

static void lc_refresh_limits(void)
{
	limits_from(&dv.lim, &dv.cfg, dv.features, bdev_ro[0] || bdev_ro[1]);
}

/* Identity memory table in @n regions cut at page boundaries (or a bad one). */
static int set_table(unsigned int n, uint64_t cover, int bad, struct rng *r)
{
	struct {
		struct vhost_memory hdr;
		struct vhost_memory_region reg[70];
	} t;
	uint64_t base = gpa(dv.mem.base), pages = cover / 4096, cuts[4];

	memset(&t, 0, sizeof(t));
	if (n > 4)
		n = 4;
	for (unsigned int i = 0; i + 1 < n; i++)
		cuts[i] = between(r, 1, pages - 1);
	for (unsigned int i = 1; i + 1 < n; i++)	/* sort */
		for (unsigned int j = i; j > 0 && cuts[j - 1] > cuts[j]; j--) {
			uint64_t x = cuts[j];

			cuts[j] = cuts[j - 1];
			cuts[j - 1] = x;
		}
	t.hdr.nregions = 0;
	for (unsigned int i = 0; i < n; i++) {
		uint64_t a = i ? cuts[i - 1] : 0, b = i + 1 < n ? cuts[i] : pages;

		if (b <= a)
			continue;
		t.reg[t.hdr.nregions++] = (struct vhost_memory_region){
			.guest_phys_addr = base + a * 4096, .memory_size = (b - a) * 4096,
			.userspace_addr = base + a * 4096 };
	}
	switch (bad) {
	case 1:		/* more regions than vhost's max_mem_regions (64) */
		t.hdr.nregions = 65;
		for (unsigned int i = 0; i < 65; i++)
			t.reg[i] = (struct vhost_memory_region){ base + i * 4096, 4096,
								 base + i * 4096, 0 };
		break;
	case 2:		/* padding set */
		t.hdr.padding = 1;
		break;
	case 3:		/* an empty region */
		t.reg[t.hdr.nregions++] = (struct vhost_memory_region){ base + dv.mem.size, 0,
									base + dv.mem.size, 0 };
		break;
	}
	watch("VHOST_SET_MEM_TABLE with requests in flight", 120);
	{
		int ret = vr_ioctl(dv.fd, VHOST_SET_MEM_TABLE, &t);

		unwatch();
		return ret;
	}
}

/* The table covers every buffer again: errors signalled meanwhile were expected. */
static void lc_table_restored(void)
{
	table_broken = false;
	for (unsigned int i = 0; i < dv.nq; i++)
		st.vq_errors += drain_eventfd(dv.q[i].err_fd) ? 1 : 0;
}

/* Where the rings end: a table covering less than that would stop the queues silently. */
static uint64_t rings_end(void)
{
	uint64_t end = 0;

	for (unsigned int i = 0; i < dv.nq; i++) {
		uint64_t e = gpa(dv.q[i].r.used_hdr) + vr_used_size(dv.q[i].r.num) - gpa(dv.mem.base);

		if (e > end)
			end = e;
	}
	return (end + 4095) & ~(uint64_t)4095;
}

/* The stop check: every request taken has its used entry, GET_VRING_BASE says so. */
static void lc_check_bases(void)
{
	for (unsigned int i = 0; i < dv.nq; i++) {
		struct vhost_vring_state vs = { i, 0 };
		int ret = vr_ioctl(dv.fd, VHOST_GET_VRING_BASE, &vs);

		expect_ret(ret, 0, "VHOST_GET_VRING_BASE after a stop");
		if (!ret && vs.num != vr_used_idx(&dv.q[i].r))
			report("vring-base", NULL, -1, 0, "queue %u: GET_VRING_BASE %u after a stop, "
			       "but the used idx is %u: a request taken was not completed", i, vs.num,
			       vr_used_idx(&dv.q[i].r));
	}
}

/* Rebuild the device state after RESET_OWNER (@reopen false) or close (@reopen true). */
static void lc_rebuild(bool reopen)
{
	for_each_inflight(drop, NULL);
	if (reopen) {
		struct gmem old = dv.mem;

		dev_layout(&dv, dv.nq, dv.depth, dv.ring_num);
		dv.fd = open(opt.vhost, O_RDWR | O_CLOEXEC);
		if (dv.fd < 0)
			die("cannot open %s: %s", opt.vhost, strerror(errno));
		/* The old device is gone (see lc_close()): its memory can go. */
		gmem_destroy(&old);
	} else {
		for (unsigned int i = 0; i < dv.nq; i++) {
			vr_ring_clear(&dv.q[i].r);
			fq_reset(&dv.q[i], 0);
		}
	}
	if (cur_be < 0)
		cur_be = next_be;
	dev_setup(&dv, bdev_fds[cur_be], opt.workers, lc_features);
	for (unsigned int i = 0; i < dv.nq; i++)
		worker_of[i] = (int)(i % dv.nworkers);
	default_worker = dv.workers[0];
	lc_refresh_limits();
	table_broken = false;
}

/*
 * Close with requests in flight: close() does not wait; the requests taken
 * complete later and write their used entries (the memory is still
 * mapped), the others are never taken.  The old device keeps its claim on
 * the backend until its last request completed, so an O_EXCL open of the
 * backend succeeds only then: until it does, keep collecting completions.
 */
static void lc_close(void)
{
	uint64_t end = now_ns() + 60ull * 1000000000ull;
	int bfd = -1;

	st.lifecycle_actions++;
	dev_close(&dv);
	if (cur_be >= 0) {
		while (now_ns() < end) {
			reap_all();
			bfd = open(dev_paths[cur_be], O_RDONLY | O_EXCL | O_CLOEXEC);
			if (bfd >= 0 || errno != EBUSY)
				break;
			usleep(20000);
		}
		if (bfd < 0) {
			report("close", NULL, -1, 0, "the backend %s was still claimed 60 s after the "
			       "device was closed (%s)", dev_paths[cur_be], strerror(errno));
			return;
		}
		close(bfd);
	}
	reap_all();
	lc_rebuild(true);
}

static void lc_reset_owner(void)
{
	struct blk_config cfg;
	int ret;

	watch("VHOST_RESET_OWNER with requests in flight", 120);
	ret = vr_ioctl(dv.fd, VHOST_RESET_OWNER, NULL);
	unwatch();
	expect_ret(ret, 0, "VHOST_RESET_OWNER");
	/* Every request taken was completed before it returned. */
	reap_all();
	expect_ret(vr_get_config(dv.fd, &cfg, 8), -ENODEV, "VHOST_BLK_GET_CONFIG after RESET_OWNER");
	expect_ret(vr_set_backend(dv.fd, bdev_fds[0]), -EPERM,
		   "VHOST_BLK_SET_BACKEND after RESET_OWNER, before SET_OWNER");
	for (unsigned int i = 0; i < dv.nq; i++)
		fq_close_eventfds(&dv.q[i]);
	lc_rebuild(false);
}

/* One random action: the ioctl, what it must return, and the model updated. */
static void lc_action(struct rng *r)
{
	struct fq *q = &dv.q[below(r, dv.nq)];
	bool running = cur_be >= 0;
	int ret;

	switch (below(r, 20)) {
	case 0:		/* the same table again, maybe in pieces; restores a broken one */
		ret = set_table((unsigned int)between(r, 1, 4), dv.mem.size, 0, r);
		expect_ret(ret, 0, "VHOST_SET_MEM_TABLE");
		if (!ret && table_broken)
			lc_table_restored();
		break;
	case 1:		/* a table vhost refuses: the old one stays */
		switch (between(r, 1, 3)) {
		case 1:
			expect_ret(set_table(1, dv.mem.size, 1, r), -E2BIG,
				   "VHOST_SET_MEM_TABLE with 65 regions");
			break;
		case 2:
			expect_ret(set_table(1, dv.mem.size, 2, r), -EOPNOTSUPP,
				   "VHOST_SET_MEM_TABLE with padding");
			break;
		default:
			expect_ret(set_table(1, dv.mem.size, 3, r), -EFAULT,
				   "VHOST_SET_MEM_TABLE with an empty region");
		}
		break;
	case 2:		/* a table without some of the buffers: chains stop with vq errors */
		if (!running || table_broken)
			break;
		ret = set_table((unsigned int)between(r, 1, 2),
				between(r, rings_end() / 4096, dv.mem.size / 4096 - 1) * 4096, 0, r);
		expect_ret(ret, 0, "VHOST_SET_MEM_TABLE without some buffers");
		table_broken = !ret;
		lc_state_since = lc_iter;
		break;
	case 3:		/* stop */
		if (!running)
			break;
		watch("VHOST_BLK_SET_BACKEND -1 with requests in flight", 120);
		ret = vr_set_backend(dv.fd, -1);
		unwatch();
		expect_ret(ret, 0, "VHOST_BLK_SET_BACKEND -1");
		reap_all();
		lc_check_bases();
		next_be = (int)below(r, 2);
		cur_be = -1;
		for_each_inflight(retarget, &shadows[next_be]);
		lc_state_since = lc_iter;
		break;
	case 4:		/* start again (after a stop) */
		if (running)
			break;
		ret = set_backend_busy(dv.fd, bdev_fds[next_be]);
		expect_ret(ret, 0, "VHOST_BLK_SET_BACKEND after a stop");
		cur_be = next_be;
		for (unsigned int i = 0; i < dv.nq; i++)
			dv.q[i].kick_all = true;
		break;
	case 5: {	/* swap, or the same backend again */
		int to = (int)below(r, 2);

		if (!running)
			break;
		ret = set_backend_busy(dv.fd, bdev_fds[to]);
		expect_ret(ret, 0, to == cur_be ? "VHOST_BLK_SET_BACKEND of the same backend" :
			   "VHOST_BLK_SET_BACKEND swap with requests in flight");
		if (to != cur_be)
			for_each_inflight(make_ambiguous, &shadows[to]);
		cur_be = to;
		break;
	}
	case 6: {	/* backends it must refuse, the running one stays */
		struct vhost_vring_file f = { 1, bdev_fds[0] };
		int wfd;

		switch (below(r, 4)) {
		case 0:
			expect_ret(vr_ioctl(dv.fd, VR_VHOST_BLK_SET_BACKEND, &f), -EINVAL,
				   "VHOST_BLK_SET_BACKEND index 1");
			break;
		case 1:
			wfd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
			expect_ret(vr_set_backend(dv.fd, wfd), -ENOTBLK,
				   "VHOST_BLK_SET_BACKEND of a regular file");
			close(wfd);
			break;
		case 2:
			expect_ret(vr_set_backend(dv.fd, 9999), -EBADF,
				   "VHOST_BLK_SET_BACKEND of a closed fd");
			break;
		default:
			wfd = open(dev_paths[0], O_WRONLY | O_CLOEXEC);
			if (wfd < 0)
				break;
			expect_ret(vr_set_backend(dv.fd, wfd), -EBADF,
				   "VHOST_BLK_SET_BACKEND of a write-only fd");
			close(wfd);
		}
		break;
	}
	case 7: {	/* the config: a range outside it, no backend while stopped */
		struct {
			struct vr_config_range range;
			uint8_t b[16];
		} cb = { { 90, 16 }, { 0 } };
		struct blk_config cfg;

		expect_ret(vr_ioctl(dv.fd, VR_VHOST_BLK_GET_CONFIG, &cb), -EINVAL,
			   "VHOST_BLK_GET_CONFIG past the structure");
		ret = vr_get_config(dv.fd, &cfg, sizeof(cfg));
		expect_ret(ret, running ? 0 : -ENODEV, "VHOST_BLK_GET_CONFIG");
		if (!ret && (cfg.capacity != dv.cfg.capacity || cfg.blk_size != dv.cfg.blk_size))
			report("config", NULL, -1, 0, "capacity %" PRIu64 " block %u, was %" PRIu64
			       " block %u", cfg.capacity, cfg.blk_size, dv.cfg.capacity,
			       dv.cfg.blk_size);
		break;
	}
	case 8: {	/* ring ioctls while the backend runs: NUM and BASE are refused */
		struct vhost_vring_state vs = { q->index, q->r.num };
		struct vhost_vring_addr a = vr_ring_addr(&q->r, q->index);

		if (!running)
			break;
		expect_ret(vr_ioctl(dv.fd, VHOST_SET_VRING_NUM, &vs), -EBUSY,
			   "VHOST_SET_VRING_NUM while running");
		vs.num = q->avail_idx;
		expect_ret(vr_ioctl(dv.fd, VHOST_SET_VRING_BASE, &vs), -EBUSY,
			   "VHOST_SET_VRING_BASE while running");
		expect_ret(vr_ioctl(dv.fd, VHOST_SET_VRING_ADDR, &a), 0,
			   "VHOST_SET_VRING_ADDR (the same) while running");
		a.used_user_addr += 2;
		expect_ret(vr_ioctl(dv.fd, VHOST_SET_VRING_ADDR, &a), -EINVAL,
			   "VHOST_SET_VRING_ADDR of a misaligned used ring");
		break;
	}
	case 9: {	/* ring ioctls while stopped */
		struct vhost_vring_state vs = { q->index, 3 };

		if (running)
			break;
		expect_ret(vr_ioctl(dv.fd, VHOST_SET_VRING_NUM, &vs), -EINVAL,
			   "VHOST_SET_VRING_NUM 3");
		vs.num = 0x10000;
		expect_ret(vr_ioctl(dv.fd, VHOST_SET_VRING_BASE, &vs), -EINVAL,
			   "VHOST_SET_VRING_BASE 0x10000");
		vs.num = 0;
		ret = vr_ioctl(dv.fd, VHOST_GET_VRING_BASE, &vs);
		expect_ret(ret, 0, "VHOST_GET_VRING_BASE");
		expect_ret(vr_ioctl(dv.fd, VHOST_SET_VRING_BASE, &vs), 0,
			   "VHOST_SET_VRING_BASE of GET_VRING_BASE's value");
		break;
	}
	case 10: {	/* new kick, call or error eventfd under load */
		int nfd = new_eventfd(), *slotfd;
		unsigned long req;
		struct vhost_vring_file f = { q->index, nfd };
		const char *what;

		switch (below(r, 3)) {
		case 0:
			slotfd = &q->kick_fd;
			req = VHOST_SET_VRING_KICK;
			what = "VHOST_SET_VRING_KICK (new eventfd) with requests in flight";
			break;
		case 1:
			slotfd = &q->call_fd;
			req = VHOST_SET_VRING_CALL;
			what = "VHOST_SET_VRING_CALL (new eventfd) with requests in flight";
			break;
		default:
			slotfd = &q->err_fd;
			req = VHOST_SET_VRING_ERR;
			what = "VHOST_SET_VRING_ERR (new eventfd) with requests in flight";
		}
		watch(what, 60);
		ret = vr_ioctl(dv.fd, req, &f);
		unwatch();
		expect_ret(ret, 0, what);
		if (ret) {
			close(nfd);
			break;
		}
		close(*slotfd);
		*slotfd = nfd;
		/* The device polls the new kick eventfd: tell it about the ring once. */
		q->kick_all = true;
		break;
	}
	case 11:	/* a new worker */
		if (dv.nworkers >= MAX_QUEUES)
			break;
		ret = vr_new_worker(dv.fd, &dv.workers[dv.nworkers]);
		expect_ret(ret, 0, "VHOST_NEW_WORKER");
		if (!ret)
			dv.nworkers++;
		break;
	case 12: {	/* move a queue to another worker under load */
		int w = (int)below(r, dv.nworkers);

		watch("VHOST_ATTACH_VRING_WORKER with requests in flight", 60);
		ret = vr_attach_vring_worker(dv.fd, q->index, dv.workers[w]);
		unwatch();
		expect_ret(ret, 0, "VHOST_ATTACH_VRING_WORKER");
		if (!ret)
			worker_of[q->index] = w;
		break;
	}
	case 13: {	/* free a worker: refused while a queue uses it */
		int w = (int)below(r, dv.nworkers + 1);
		bool used = false;

		if (w == (int)dv.nworkers) {
			expect_ret(vr_free_worker(dv.fd, dv.workers[dv.nworkers - 1] + 1000), -ENODEV,
				   "VHOST_FREE_WORKER of an unknown worker");
			break;
		}
		for (unsigned int i = 0; i < dv.nq; i++)
			used |= worker_of[i] == w;
		/* The device has 16 virtqueues: those not set up stay on SET_OWNER's worker. */
		used |= dv.workers[w] == default_worker && dv.nq < 16;
		ret = vr_free_worker(dv.fd, dv.workers[w]);
		expect_ret(ret, used ? -EBUSY : 0, used ? "VHOST_FREE_WORKER of a worker in use" :
			   "VHOST_FREE_WORKER of an idle worker");
		if (!ret && !used) {
			dv.workers[w] = dv.workers[--dv.nworkers];
			for (unsigned int i = 0; i < dv.nq; i++)
				if (worker_of[i] == (int)dv.nworkers)
					worker_of[i] = w;
		}
		break;
	}
	case 14: {	/* which worker serves a queue */
		unsigned int id = ~0u;

		ret = vr_get_vring_worker(dv.fd, q->index, &id);
		expect_ret(ret, 0, "VHOST_GET_VRING_WORKER");
		if (!ret && id != dv.workers[worker_of[q->index]])
			report("worker", NULL, -1, 0, "queue %u is on worker %u, %u expected", q->index,
			       id, dv.workers[worker_of[q->index]]);
		break;
	}
	case 15: {	/* features: an unknown bit is refused; others only while stopped */
		uint64_t f = dv.features | (1ull << 63);
		static const int bits[] = { F_BLK_DISCARD, F_BLK_WRITE_ZEROES, F_BLK_RO, F_BLK_FLUSH };

		expect_ret(vr_ioctl(dv.fd, VHOST_SET_FEATURES, &f), -EOPNOTSUPP,
			   "VHOST_SET_FEATURES with an unknown bit");
		if (running || table_broken)
			break;
		f = dv.features ^ (1ull << bits[below(r, N_OF(bits))]);
		ret = vr_ioctl(dv.fd, VHOST_SET_FEATURES, &f);
		expect_ret(ret, 0, "VHOST_SET_FEATURES while stopped");
		if (!ret) {
			dv.features = lc_features = f;
			lc_refresh_limits();
			for_each_inflight(retarget, &shadows[next_be]);
		}
		break;
	}
	case 16:
		if (below(r, 3))
			break;
		lc_reset_owner();
		break;
	case 17:
		if (below(r, 3))
			break;
		lc_close();
		break;
	default:	/* nothing: let requests run */
		break;
	}
}

static int run_lifecycle(void)
{
	struct blk_config cfg2;
	uint64_t last = now_ns(), iter = 0;
	double secs;
	bool ok = true;

	dev_paths[0] = opt.dev;
	dev_paths[1] = opt.dev2;
	bdev_fds[0] = open_bdev(opt.dev, &bdev_ro[0]);
	bdev_fds[1] = open_bdev(opt.dev2, &bdev_ro[1]);
	lc_features = wanted_features();
	dev_layout(&dv, opt.queues, opt.depth, opt.ring_num);
	/* Both backends must offer the same: learn the second one's config first. */
	dev_start(&dv, bdev_fds[1], 1);
	cfg2 = dv.cfg;
	dev_close(&dv);
	for (unsigned int i = 0; i < dv.nq; i++)
		fq_reset(&dv.q[i], 0);
	dev_start(&dv, bdev_fds[0], opt.workers);
	if (cfg2.capacity != dv.cfg.capacity || cfg2.blk_size != dv.cfg.blk_size ||
	    cfg2.max_discard_sectors != dv.cfg.max_discard_sectors ||
	    cfg2.max_write_zeroes_sectors != dv.cfg.max_write_zeroes_sectors)
		die("--dev and --dev2 differ (capacity, block size, discard or write zeroes limits)");
	for (unsigned int i = 0; i < dv.nq; i++)
		worker_of[i] = (int)(i % dv.nworkers);
	default_worker = dv.workers[0];
	lc_refresh_limits();
	shadow_init(&shadows[0], region_sectors(&dv.lim));
	shadow_init(&shadows[1], region_sectors(&dv.lim));
	fill_region(opt.dev, &shadows[0], 0);
	fill_region(opt.dev2, &shadows[1], 1);
	cur_be = 0;
	measure_start();
	for (;;) {
		struct rng r = stream(3, lc_iter = iter++);
		bool errq[MAX_QUEUES] = { false };
		bool running = cur_be >= 0, more = budget_left();
		unsigned int done = 0, errs;

		fill(&dv, &shadows[running ? cur_be : next_be], more);
		if (chance(&r, 1, 2))
			lc_action(&r);
		/* A stop or a broken table does not last. */
		if (!more || lc_iter > lc_state_since + 40) {
			if (cur_be < 0) {
				expect_ret(set_backend_busy(dv.fd, bdev_fds[next_be]), 0,
					   "VHOST_BLK_SET_BACKEND after a stop");
				cur_be = next_be;
				for (unsigned int i = 0; i < dv.nq; i++)
					dv.q[i].kick_all = true;
			}
			if (table_broken) {
				expect_ret(set_table(1, dv.mem.size, 0, &r), 0,
					   "VHOST_SET_MEM_TABLE restoring the table");
				lc_table_restored();
			}
		}
		for (unsigned int i = 0; i < dv.nq; i++) {
			publish(&dv, &dv.q[i]);
			done += reap(&dv.q[i]);
		}
		if (done) {
			last = now_ns();
			progress(false);
			continue;
		}
		if (!inflight(&dv) && !more)
			break;
		errs = wait_any(&dv, 50, errq);
		if (errs) {
			st.vq_errors += errs;
			if (!table_broken)
				for (unsigned int i = 0; i < dv.nq; i++)
					if (errq[i])
						report("vq-error", NULL, -1, 0, "queue %u: the error eventfd "
						       "with a valid ring and memory table", i);
		}
		if (cur_be < 0 || table_broken)
			last = now_ns();
		else if (inflight(&dv) && (double)(now_ns() - last) / 1e9 > opt.stall) {
			stall_report(&dv, "lifecycle");
			ok = false;
			break;
		}
	}
	secs = (double)(now_ns() - t_start) / 1e9;
	if (ok && cur_be >= 0)
		ok = sweep(&dv, &shadows[cur_be]);
	dev_close(&dv);
	ok = ok && !n_failures;
	print_summary("lifecycle", secs, ok, ok ? "" : "see the failure lines");
	return ok ? 0 : 1;
}

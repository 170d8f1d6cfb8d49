// SPDX-License-Identifier: GPL-2.0
/*
 * vblk-load: a small virtio-blk load generator that plays the guest driver.
 *
 * It lays out split virtqueues in its own memory (one memfd region whose
 * "guest physical" address is its userspace address, as in
 * tools/vblk and tools/virtio/virtio_test.c) and keeps a fixed
 * number of 4k-style requests in flight per queue against either
 *
 *   --backend vhost-blk    /dev/vhost-blk with a block device attached by
 *                          VHOST_BLK_SET_BACKEND, or
 *   --backend vhost-user   a vhost-user-blk server (qemu-storage-daemon)
 *                          on a unix socket, spoken to by the vhost-user
 *                          protocol with the memory passed by SCM_RIGHTS,
 *   --backend aio          or the block device itself with Linux AIO and
 *                          O_DIRECT: the same light client without a
 *                          virtqueue, the ceiling to compare against.
 *
 * Every request is a three-descriptor chain (header, data, status).  The
 * generator kicks through an eventfd only when the device asks for it
 * (VIRTIO_RING_F_EVENT_IDX) and sleeps on the call eventfds when nothing
 * has completed, as an interrupt-driven guest driver would; --poll makes
 * it spin instead.  It prints one JSON object: IOPS, bandwidth, latency
 * percentiles and its own counters (kicks, wake-ups).
 *
 * The virtqueue layout, the guest memory and the vhost-blk set-up are shared
 * with vblk-fuzz in vring.h and vring.c.
 *
 * Build: gcc -O2 -Wall -Wextra -Werror -pthread -o vblk-load vblk-load.c vring.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <linux/aio_abi.h>
#include <linux/vhost.h>
#include <sys/syscall.h>

#include "vring.h"

/* ---- vhost-user protocol --------------------------------------------------- */

enum {
	VU_GET_FEATURES = 1,
	VU_SET_FEATURES = 2,
	VU_SET_OWNER = 3,
	VU_SET_MEM_TABLE = 5,
	VU_SET_VRING_NUM = 8,
	VU_SET_VRING_ADDR = 9,
	VU_SET_VRING_BASE = 10,
	VU_GET_VRING_BASE = 11,
	VU_SET_VRING_KICK = 12,
	VU_SET_VRING_CALL = 13,
	VU_GET_PROTOCOL_FEATURES = 15,
	VU_SET_PROTOCOL_FEATURES = 16,
	VU_GET_QUEUE_NUM = 17,
	VU_SET_VRING_ENABLE = 18,
	VU_GET_CONFIG = 24,
};

#define VU_VERSION	0x1
#define VU_REPLY	0x4
#define VU_NEED_REPLY	0x8
#define VU_PROTO_MQ		0
#define VU_PROTO_REPLY_ACK	3
#define VU_PROTO_CONFIG		9

struct vu_region {
	uint64_t gpa;
	uint64_t size;
	uint64_t uaddr;
	uint64_t mmap_offset;
};

struct vu_msg {
	uint32_t request;
	uint32_t flags;
	uint32_t size;
	union {
		uint64_t u64;
		struct vhost_vring_state state;
		struct vhost_vring_addr addr;
		struct {
			uint32_t nregions;
			uint32_t padding;
			struct vu_region regions[8];
		} mem;
		struct {
			uint32_t offset;
			uint32_t size;
			uint32_t flags;
			uint8_t region[256];
		} cfg;
	} p;
} __attribute__((packed));

#define VU_HDR_SIZE 12

/* ---- options and state ----------------------------------------------------- */

enum backend { BE_VHOST_BLK, BE_VHOST_USER, BE_AIO };

static struct {
	enum backend backend;
	const char *dev;	/* vhost-blk: the block device to attach */
	const char *vhost;	/* vhost-blk: the vhost device node */
	const char *socket;	/* vhost-user: the server's socket */
	unsigned int bs;
	unsigned int iodepth;
	unsigned int queues;
	unsigned int threads;
	unsigned int workers;
	unsigned int rwmixread;	/* percent of reads */
	const char *rw;
	double runtime;
	double ramp;
	bool poll;
	unsigned int busyloop;	/* vhost-blk: VHOST_SET_VRING_BUSYLOOP_TIMEOUT in us */
	uint64_t seed;
	uint64_t size;		/* bytes to spread offsets over; 0: the whole device */
} opt = {
	.backend = BE_VHOST_BLK,
	.vhost = "/dev/vhost-blk",
	.bs = 4096,
	.iodepth = 1,
	.queues = 1,
	.workers = 1,
	.rwmixread = 100,
	.rw = "randread",
	.runtime = 5,
	.ramp = 1,
	.seed = 0x9e3779b97f4a7c15ULL,
};

struct slot {
	struct blk_outhdr *hdr;
	uint8_t *status;
	uint64_t start_ns;
	bool write;
};

struct vq {
	unsigned int index;
	unsigned int num;
	struct vr_ring r;
	uint16_t avail_idx;
	uint16_t kicked_idx;
	uint16_t last_used;
	unsigned int inflight;
	int kick_fd;
	int call_fd;
	struct slot *slots;
};

#define HIST_SUB_BITS	6
#define HIST_SUB	(1u << HIST_SUB_BITS)
#define HIST_BUCKETS	(HIST_SUB * 58)

struct thr {
	pthread_t tid;
	unsigned int id;
	struct vq **vqs;
	unsigned int nvqs;
	uint64_t rnd;
	uint64_t reads, writes, errors;
	uint64_t kicks, waits, wakeups, spins;
	uint64_t lat_sum, lat_max;
	uint64_t *hist;
	char err[256];
};

static int phase;	/* 0 ramp, 1 measure, 2 drain */
static uint64_t dev_bytes;
static uint64_t features;
static bool event_idx;
static struct vq *vqs;
static struct gmem gm = { .fd = -1 };
static int vhost_fd = -1, bdev_fd = -1, vu_fd = -1;

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

static void die(const char *fmt, ...)
{
	va_list ap;
	char msg[512];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* One JSON line on stdout so the harness can report the reason. */
	printf("{\"tool\": \"vblk-load\", \"ok\": false, \"error\": \"");
	for (const char *c = msg; *c; c++) {
		if (*c == '"' || *c == '\\')
			putchar('\\');
		putchar(*c >= ' ' ? *c : ' ');
	}
	printf("\"}\n");
	fprintf(stderr, "vblk-load: %s\n", msg);
	exit(1);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static unsigned int hist_index(uint64_t v)
{
	unsigned int msb, idx;

	if (v < HIST_SUB)
		return (unsigned int)v;
	msb = 63u - (unsigned int)__builtin_clzll(v);
	idx = (msb - HIST_SUB_BITS + 1) * HIST_SUB +
	      (unsigned int)((v >> (msb - HIST_SUB_BITS)) & (HIST_SUB - 1));
	return idx < HIST_BUCKETS ? idx : HIST_BUCKETS - 1;
}

/* The middle of a bucket's range. */
static uint64_t hist_value(unsigned int idx)
{
	unsigned int msb, sub;
	uint64_t lo, width;

	if (idx < HIST_SUB)
		return idx;
	msb = idx / HIST_SUB + HIST_SUB_BITS - 1;
	sub = idx % HIST_SUB;
	width = 1ull << (msb - HIST_SUB_BITS);
	lo = (1ull << msb) + sub * width;
	return lo + width / 2;
}

/* ---- guest memory ------------------------------------------------------------ */

static void *galloc(size_t size, size_t align)
{
	void *p = gmem_alloc(&gm, size, align);

	if (!p)
		die("internal: guest memory of %zu bytes is too small", gm.size);
	return p;
}

static unsigned int ring_size_for(unsigned int depth)
{
	unsigned int num = 16;

	while (num < 3 * depth)
		num <<= 1;
	return num;
}

static void setup_memory(void)
{
	unsigned int num = ring_size_for(opt.iodepth);
	size_t per_q = 3 * 4096 + 16 * (size_t)num + 8 * (size_t)num + 16 * (size_t)opt.iodepth +
		       (size_t)opt.iodepth + 4096 + (size_t)opt.iodepth * opt.bs + 4096;

	size_t mem_size = ((per_q * opt.queues) + (2u << 20) - 1) & ~(size_t)((2u << 20) - 1);
	const char *what;
	int ret = gmem_init(&gm, mem_size, "vblk-load", true, &what);

	if (ret)
		die("%s: %s", what, strerror(-ret));

	vqs = calloc(opt.queues, sizeof(*vqs));
	if (!vqs)
		die("out of memory");
	for (unsigned int q = 0; q < opt.queues; q++) {
		struct vq *v = &vqs[q];
		struct blk_outhdr *hdrs;
		uint8_t *status, *data;

		v->index = q;
		v->num = num;
		if (vr_ring_alloc(&v->r, &gm, num))
			die("internal: guest memory of %zu bytes is too small", gm.size);
		hdrs = galloc(sizeof(*hdrs) * opt.iodepth, 64);
		status = galloc(opt.iodepth, 64);
		data = galloc((size_t)opt.iodepth * opt.bs, 4096);
		v->slots = calloc(opt.iodepth, sizeof(*v->slots));
		if (!v->slots)
			die("out of memory");
		for (unsigned int s = 0; s < opt.iodepth; s++) {
			struct desc *d = &v->r.desc[3 * s];

			v->slots[s].hdr = &hdrs[s];
			v->slots[s].status = &status[s];
			d[0] = (struct desc){ (uint64_t)(uintptr_t)&hdrs[s], sizeof(*hdrs),
					      DESC_F_NEXT, (uint16_t)(3 * s + 1) };
			d[1] = (struct desc){ (uint64_t)(uintptr_t)(data + (size_t)s * opt.bs),
					      opt.bs, DESC_F_NEXT, (uint16_t)(3 * s + 2) };
			d[2] = (struct desc){ (uint64_t)(uintptr_t)&status[s], 1, DESC_F_WRITE, 0 };
		}
		v->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		v->call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (v->kick_fd < 0 || v->call_fd < 0)
			die("eventfd: %s", strerror(errno));
	}
}

/* ---- vhost-blk ----------------------------------------------------------------- */

static void vhost_ioctl(unsigned long req, void *arg, const char *what)
{
	if (ioctl(vhost_fd, req, arg) < 0)
		die("%s on %s: %s", what, opt.vhost, strerror(errno));
}

/* A vring.c step that failed with -@err: fatal. */
static void vhost_check(int err, const char *what)
{
	if (err)
		die("%s on %s: %s", what, opt.vhost, strerror(-err));
}

static void setup_vhost_blk(void)
{
	struct blk_config cfg;
	const char *what;
	uint64_t offered;
	unsigned int worker_ids[64];

	vhost_fd = open(opt.vhost, O_RDWR | O_CLOEXEC);
	if (vhost_fd < 0)
		die("cannot open %s: %s", opt.vhost, strerror(errno));
	bdev_fd = open(opt.dev, O_RDWR | O_CLOEXEC);
	if (bdev_fd < 0)
		die("cannot open %s: %s", opt.dev, strerror(errno));
	vhost_ioctl(VHOST_SET_OWNER, NULL, "VHOST_SET_OWNER");
	vhost_ioctl(VHOST_GET_FEATURES, &offered, "VHOST_GET_FEATURES");
	features = offered & ((1ull << F_VERSION_1) | (1ull << F_RING_EVENT_IDX));
	vhost_ioctl(VHOST_SET_FEATURES, &features, "VHOST_SET_FEATURES");
	event_idx = features & (1ull << F_RING_EVENT_IDX);
	vhost_check(vr_set_mem_identity(vhost_fd, &gm), "VHOST_SET_MEM_TABLE");

	/* Worker 0 is the default one SET_OWNER made; queue q goes to q % workers. */
	if (opt.workers > 64)
		die("--workers %u: at most 64", opt.workers);
	for (unsigned int w = 1; w < opt.workers; w++)
		vhost_check(vr_new_worker(vhost_fd, &worker_ids[w]), "VHOST_NEW_WORKER");
	for (unsigned int q = 0; q < opt.queues; q++) {
		struct vq *v = &vqs[q];

		vhost_check(vr_setup_vring(vhost_fd, q, &v->r, 0, v->kick_fd, v->call_fd, -1,
					   &what), what);
		if (opt.busyloop) {
			struct vhost_vring_state bl = { q, opt.busyloop };

			vhost_ioctl(VHOST_SET_VRING_BUSYLOOP_TIMEOUT, &bl,
				    "VHOST_SET_VRING_BUSYLOOP_TIMEOUT");
		}
		if (q % opt.workers)
			vhost_check(vr_attach_vring_worker(vhost_fd, q, worker_ids[q % opt.workers]),
				    "VHOST_ATTACH_VRING_WORKER");
	}
	vhost_check(vr_set_backend(vhost_fd, bdev_fd), "VHOST_BLK_SET_BACKEND");
	vhost_check(vr_get_config(vhost_fd, &cfg, sizeof(cfg.capacity)), "VHOST_BLK_GET_CONFIG");
	dev_bytes = cfg.capacity * 512;
}

/* ---- vhost-user ------------------------------------------------------------------ */

static void vu_send(struct vu_msg *m, const int *fds, unsigned int nfds)
{
	struct iovec iov = { m, VU_HDR_SIZE + m->size };
	char ctl[CMSG_SPACE(sizeof(int) * 8)];
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	m->flags |= VU_VERSION;
	if (nfds) {
		struct cmsghdr *c;

		memset(ctl, 0, sizeof(ctl));
		mh.msg_control = ctl;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	if (sendmsg(vu_fd, &mh, MSG_NOSIGNAL) != (ssize_t)iov.iov_len)
		die("vhost-user: sending request %u: %s", m->request, strerror(errno));
}

static void read_full(void *buf, size_t len, uint32_t req)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(vu_fd, (char *)buf + got, len - got);

		if (n <= 0)
			die("vhost-user: the server closed the connection or failed "
			    "answering request %u: %s", req, n ? strerror(errno) : "EOF");
		got += (size_t)n;
	}
}

static void vu_recv(struct vu_msg *m, uint32_t req)
{
	read_full(m, VU_HDR_SIZE, req);
	if (m->size > sizeof(m->p))
		die("vhost-user: reply to %u too large (%u bytes)", req, m->size);
	read_full(&m->p, m->size, req);
	if (m->request != req || !(m->flags & VU_REPLY))
		die("vhost-user: expected a reply to %u, got request %u flags %#x",
		    req, m->request, m->flags);
}

static uint64_t vu_get_u64(uint32_t req)
{
	struct vu_msg m = { .request = req };

	vu_send(&m, NULL, 0);
	vu_recv(&m, req);
	return m.p.u64;
}

static uint64_t proto_features;

static void vu_simple(uint32_t req, const void *payload, uint32_t size, const int *fds,
		      unsigned int nfds)
{
	struct vu_msg m = { .request = req, .size = size };
	bool ack = proto_features & (1ull << VU_PROTO_REPLY_ACK);

	if (size)
		memcpy(&m.p, payload, size);
	if (ack)
		m.flags |= VU_NEED_REPLY;
	vu_send(&m, fds, nfds);
	if (ack) {
		vu_recv(&m, req);
		if (m.p.u64)
			die("vhost-user: the server refused request %u (%" PRIu64 ")", req, m.p.u64);
	}
}

static void setup_vhost_user(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	uint64_t offered, want;
	struct vu_msg m;
	uint64_t t_end = now_ns() + 60ull * 1000000000ull;

	if (strlen(opt.socket) >= sizeof(sa.sun_path))
		die("socket path %s is too long", opt.socket);
	strcpy(sa.sun_path, opt.socket);
	for (;;) {
		vu_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (vu_fd < 0)
			die("socket: %s", strerror(errno));
		if (connect(vu_fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			break;
		if (now_ns() > t_end)
			die("cannot connect to the vhost-user server at %s: %s", opt.socket,
			    strerror(errno));
		close(vu_fd);
		usleep(100000);
	}
	offered = vu_get_u64(VU_GET_FEATURES);
	vu_simple(VU_SET_OWNER, NULL, 0, NULL, 0);
	if (offered & (1ull << F_VHOST_USER_PROTOCOL)) {
		uint64_t pf = vu_get_u64(VU_GET_PROTOCOL_FEATURES);

		pf &= (1ull << VU_PROTO_MQ) | (1ull << VU_PROTO_REPLY_ACK) |
		      (1ull << VU_PROTO_CONFIG);
		m = (struct vu_msg){ .request = VU_SET_PROTOCOL_FEATURES, .size = 8 };
		m.p.u64 = pf;
		vu_send(&m, NULL, 0);
		proto_features = pf;
		if (pf & (1ull << VU_PROTO_MQ)) {
			uint64_t nq = vu_get_u64(VU_GET_QUEUE_NUM);

			if (nq < opt.queues)
				die("the vhost-user server offers %" PRIu64 " queues, %u asked for",
				    nq, opt.queues);
		} else if (opt.queues > 1) {
			die("the vhost-user server does not offer multiqueue");
		}
	}
	want = (1ull << F_VERSION_1) | (1ull << F_RING_EVENT_IDX) | (1ull << F_BLK_MQ) |
	       (1ull << F_VHOST_USER_PROTOCOL);
	features = offered & want;
	event_idx = features & (1ull << F_RING_EVENT_IDX);
	vu_simple(VU_SET_FEATURES, &features, 8, NULL, 0);

	if (proto_features & (1ull << VU_PROTO_CONFIG)) {
		m = (struct vu_msg){ .request = VU_GET_CONFIG, .size = 12 + 8 };
		m.p.cfg.size = 8;
		vu_send(&m, NULL, 0);
		vu_recv(&m, VU_GET_CONFIG);
		if (m.size < 12 + 8)
			die("vhost-user: GET_CONFIG failed (reply of %u bytes)", m.size);
		memcpy(&dev_bytes, m.p.cfg.region, 8);
		dev_bytes *= 512;
	}

	memset(&m, 0, sizeof(m));
	m.p.mem.nregions = 1;
	m.p.mem.regions[0] = (struct vu_region){ gpa(gm.base), gm.size, gpa(gm.base), 0 };
	vu_simple(VU_SET_MEM_TABLE, &m.p, 8 + sizeof(struct vu_region), &gm.fd, 1);

	for (unsigned int q = 0; q < opt.queues; q++) {
		struct vq *v = &vqs[q];
		struct vhost_vring_state st = { q, v->num };
		struct vhost_vring_addr addr = vr_ring_addr(&v->r, q);
		uint64_t idx = q;

		vu_simple(VU_SET_VRING_NUM, &st, sizeof(st), NULL, 0);
		st.num = 0;
		vu_simple(VU_SET_VRING_BASE, &st, sizeof(st), NULL, 0);
		vu_simple(VU_SET_VRING_ADDR, &addr, sizeof(addr), NULL, 0);
		vu_simple(VU_SET_VRING_KICK, &idx, 8, &v->kick_fd, 1);
		vu_simple(VU_SET_VRING_CALL, &idx, 8, &v->call_fd, 1);
	}
	if (features & (1ull << F_VHOST_USER_PROTOCOL)) {
		for (unsigned int q = 0; q < opt.queues; q++) {
			struct vhost_vring_state st = { q, 1 };

			vu_simple(VU_SET_VRING_ENABLE, &st, sizeof(st), NULL, 0);
		}
	}
}

/* ---- the I/O loop ------------------------------------------------------------------ */

/* A read or a write, in the proportion --rwmixread asks for. */
static bool pick_write(struct thr *t)
{
	return opt.rwmixread < 100 &&
	       (opt.rwmixread == 0 || xorshift(&t->rnd) % 100 >= opt.rwmixread);
}

/* Count a completion of the measured phase and its latency. */
static void account(struct thr *t, uint64_t lat, bool write)
{
	if (write)
		t->writes++;
	else
		t->reads++;
	t->lat_sum += lat;
	if (lat > t->lat_max)
		t->lat_max = lat;
	t->hist[hist_index(lat)]++;
}

static void submit(struct thr *t, struct vq *v, unsigned int s, uint64_t now)
{
	struct slot *sl = &v->slots[s];
	uint64_t blocks = dev_bytes / opt.bs;
	bool write = pick_write(t);

	sl->write = write;
	sl->hdr->type = write ? BLK_T_OUT : BLK_T_IN;
	sl->hdr->ioprio = 0;
	sl->hdr->sector = (xorshift(&t->rnd) % blocks) * (opt.bs / 512);
	*sl->status = 0xff;
	v->r.desc[3 * s + 1].flags = DESC_F_NEXT | (write ? 0 : DESC_F_WRITE);
	sl->start_ns = now;
	v->r.avail[2 + v->avail_idx % v->num] = (uint16_t)(3 * s);
	v->avail_idx++;
	v->inflight++;
}

static void publish(struct thr *t, struct vq *v)
{
	bool kick;

	if (v->avail_idx == v->kicked_idx)
		return;
	__atomic_store_n(&v->r.avail[1], v->avail_idx, __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (event_idx)
		kick = vr_need_event(__atomic_load_n(v->r.avail_event, __ATOMIC_RELAXED),
				  v->avail_idx, v->kicked_idx);
	else
		kick = !(__atomic_load_n(&v->r.used_hdr[0], __ATOMIC_RELAXED) & USED_F_NO_NOTIFY);
	v->kicked_idx = v->avail_idx;
	if (kick) {
		uint64_t one = 1;

		t->kicks++;
		if (write(v->kick_fd, &one, 8) != 8)
			snprintf(t->err, sizeof(t->err), "kick of queue %u: %s", v->index,
				 strerror(errno));
	}
}

/* Reap what completed on one queue and, unless draining, resubmit at once. */
static unsigned int reap(struct thr *t, struct vq *v, int ph, uint64_t now)
{
	uint16_t used_idx = vr_used_idx(&v->r);
	unsigned int n = 0;

	while (v->last_used != used_idx) {
		struct used_elem e = v->r.used_ring[v->last_used % v->num];
		unsigned int s = e.id / 3;
		struct slot *sl;

		v->last_used++;
		if (e.id % 3 || s >= opt.iodepth) {
			snprintf(t->err, sizeof(t->err), "queue %u: bad used id %u", v->index, e.id);
			t->errors++;
			continue;
		}
		sl = &v->slots[s];
		v->inflight--;
		n++;
		if (*sl->status != 0)
			t->errors++;
		if (ph == 1)
			account(t, now - sl->start_ns, sl->write);
		if (ph < 2)
			submit(t, v, s, now);
	}
	if (n)
		publish(t, v);
	/* Ask for a call at the next completion (virtqueue_enable_cb). */
	if (event_idx)
		__atomic_store_n(vr_used_event(&v->r), v->last_used, __ATOMIC_RELAXED);
	return n;
}

static bool pending(struct vq *v)
{
	return vr_used_idx(&v->r) != v->last_used;
}

static void *thread_main(void *arg)
{
	struct thr *t = arg;
	struct pollfd pfd[64];
	uint64_t now = now_ns(), drain_deadline = 0;

	for (unsigned int i = 0; i < t->nvqs; i++) {
		struct vq *v = t->vqs[i];

		for (unsigned int s = 0; s < opt.iodepth; s++)
			submit(t, v, s, now);
		publish(t, v);
		pfd[i] = (struct pollfd){ .fd = v->call_fd, .events = POLLIN };
	}
	for (;;) {
		int ph = __atomic_load_n(&phase, __ATOMIC_RELAXED);
		unsigned int done = 0, inflight = 0;
		bool any = false;

		now = now_ns();
		for (unsigned int i = 0; i < t->nvqs; i++) {
			done += reap(t, t->vqs[i], ph, now);
			inflight += t->vqs[i]->inflight;
		}
		if (ph == 2) {
			if (!inflight)
				break;
			if (!drain_deadline)
				drain_deadline = now + 10ull * 1000000000ull;
			else if (now > drain_deadline) {
				snprintf(t->err, sizeof(t->err),
					 "%u requests still in flight 10s after the end", inflight);
				break;
			}
		}
		if (done)
			continue;
		if (opt.poll) {
			t->spins++;
			continue;
		}
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		for (unsigned int i = 0; i < t->nvqs; i++)
			any |= pending(t->vqs[i]);
		if (any)
			continue;
		t->waits++;
		if (poll(pfd, t->nvqs, 100) > 0) {
			t->wakeups++;
			for (unsigned int i = 0; i < t->nvqs; i++) {
				uint64_t cnt;

				if ((pfd[i].revents & POLLIN) &&
				    read(pfd[i].fd, &cnt, 8) < 0 && errno != EAGAIN)
					snprintf(t->err, sizeof(t->err), "call eventfd: %s",
						 strerror(errno));
			}
		}
	}
	return NULL;
}


/* ---- direct: Linux AIO with O_DIRECT on the block device ------------------------ */

static int aio_fd = -1;

/* The next request of an AIO slot: read or write, at a random block. */
static void aio_prep(struct thr *t, struct iocb *cb, uint64_t blocks)
{
	cb->aio_lio_opcode = pick_write(t) ? IOCB_CMD_PWRITE : IOCB_CMD_PREAD;
	cb->aio_offset = (int64_t)((xorshift(&t->rnd) % blocks) * opt.bs);
}

static void *aio_thread(void *arg)
{
	struct thr *t = arg;
	unsigned int n = opt.iodepth * t->nvqs;
	aio_context_t ctx = 0;
	struct iocb *cbs = calloc(n, sizeof(*cbs));
	struct iocb **ptrs = calloc(n, sizeof(*ptrs));
	struct io_event *ev = calloc(n, sizeof(*ev));
	uint64_t *start = calloc(n, sizeof(*start));
	uint8_t *bufs = NULL;
	uint64_t blocks = dev_bytes / opt.bs, now, drain_deadline = 0;
	unsigned int inflight = 0;

	if (!cbs || !ptrs || !ev || !start ||
	    posix_memalign((void **)&bufs, 4096, (size_t)n * opt.bs)) {
		snprintf(t->err, sizeof(t->err), "out of memory");
		return NULL;
	}
	memset(bufs, 0, (size_t)n * opt.bs);
	if (syscall(SYS_io_setup, n, &ctx) < 0) {
		snprintf(t->err, sizeof(t->err), "io_setup: %s", strerror(errno));
		return NULL;
	}
	now = now_ns();
	for (unsigned int i = 0; i < n; i++) {
		cbs[i] = (struct iocb){ .aio_data = i, .aio_fildes = (uint32_t)aio_fd,
					.aio_buf = (uint64_t)(uintptr_t)(bufs + (size_t)i * opt.bs),
					.aio_nbytes = opt.bs };
		aio_prep(t, &cbs[i], blocks);
		ptrs[i] = &cbs[i];
		start[i] = now;
	}
	if (syscall(SYS_io_submit, ctx, (long)n, ptrs) != (long)n) {
		snprintf(t->err, sizeof(t->err), "io_submit: %s", strerror(errno));
		syscall(SYS_io_destroy, ctx);
		return NULL;
	}
	inflight = n;
	for (;;) {
		int ph = __atomic_load_n(&phase, __ATOMIC_RELAXED);
		struct timespec ts = { 0, 100000000 };
		long got, resub = 0;

		if (ph == 2) {
			if (!inflight)
				break;
			now = now_ns();
			if (!drain_deadline)
				drain_deadline = now + 10ull * 1000000000ull;
			else if (now > drain_deadline)
				break;
		}
		t->waits++;
		got = syscall(SYS_io_getevents, ctx, opt.poll ? 0L : 1L, (long)n, ev, &ts);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			snprintf(t->err, sizeof(t->err), "io_getevents: %s", strerror(errno));
			break;
		}
		now = now_ns();
		for (long e = 0; e < got; e++) {
			unsigned int i = (unsigned int)ev[e].data;
			struct iocb *cb = &cbs[i];

			inflight--;
			if (ev[e].res != (int64_t)opt.bs)
				t->errors++;
			if (ph == 1)
				account(t, now - start[i],
					cb->aio_lio_opcode == IOCB_CMD_PWRITE);
			if (ph < 2) {
				aio_prep(t, cb, blocks);
				start[i] = now;
				ptrs[resub++] = cb;
			}
		}
		if (resub) {
			t->kicks++;
			if (syscall(SYS_io_submit, ctx, resub, ptrs) != resub) {
				snprintf(t->err, sizeof(t->err), "io_submit: %s", strerror(errno));
				break;
			}
			inflight += (unsigned int)resub;
		}
	}
	syscall(SYS_io_destroy, ctx);
	return NULL;
}

static void setup_aio(void)
{
	aio_fd = open(opt.dev, O_RDWR | O_DIRECT | O_CLOEXEC);
	if (aio_fd < 0)
		die("cannot open %s with O_DIRECT: %s", opt.dev, strerror(errno));
	if (ioctl(aio_fd, BLKGETSIZE64, &dev_bytes) < 0)
		die("BLKGETSIZE64 on %s: %s", opt.dev, strerror(errno));
}

/* ---- main ------------------------------------------------------------------------------ */

static void usage(void)
{
	fprintf(stderr,
		"usage: vblk-load --backend vhost-blk|aio --dev /dev/BDEV [options]\n"
		"       vblk-load --backend vhost-user --socket PATH [options]\n"
		"options: --bs N (4096) --iodepth N per queue (1) --queues N (1)\n"
		"         --threads N (queues) --workers N vhost workers (1; vhost-blk)\n"
		"         --rw randread|randwrite|randrw (randread) --rwmixread PCT (50 for randrw)\n"
		"         --runtime SEC (5) --ramp SEC (1) --size BYTES (device size) --poll\n"
		"         --seed N --vhost PATH (/dev/vhost-blk)\n"
		"         --busyloop US: vhost-blk busy-poll timeout per queue (0)\n");
	exit(2);
}

static unsigned long parse_num(const char *name, const char *s, unsigned long lo,
			       unsigned long hi)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno || *end || end == s || v < lo || v > hi)
		die("--%s %s: expected a whole number from %lu to %lu", name, s, lo, hi);
	return v;
}

static double parse_sec(const char *name, const char *s)
{
	char *end;
	double v = strtod(s, &end);

	if (*end || end == s || !(v >= 0 && v < 86400))
		die("--%s %s: expected seconds (0 to 86400)", name, s);
	return v;
}

static void sleep_sec(double s)
{
	struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static uint64_t percentile(const uint64_t *hist, uint64_t total, double p)
{
	uint64_t want = (uint64_t)((double)total * p / 100.0), seen = 0;

	if (!total)
		return 0;
	if (want >= total)
		want = total - 1;
	for (unsigned int i = 0; i < HIST_BUCKETS; i++) {
		seen += hist[i];
		if (seen > want)
			return hist_value(i);
	}
	return hist_value(HIST_BUCKETS - 1);
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "backend", required_argument, NULL, 'B' },
		{ "dev", required_argument, NULL, 'd' },
		{ "vhost", required_argument, NULL, 'V' },
		{ "socket", required_argument, NULL, 'S' },
		{ "bs", required_argument, NULL, 'b' },
		{ "iodepth", required_argument, NULL, 'i' },
		{ "queues", required_argument, NULL, 'q' },
		{ "threads", required_argument, NULL, 't' },
		{ "workers", required_argument, NULL, 'w' },
		{ "rw", required_argument, NULL, 'r' },
		{ "rwmixread", required_argument, NULL, 'm' },
		{ "runtime", required_argument, NULL, 'R' },
		{ "ramp", required_argument, NULL, 'a' },
		{ "size", required_argument, NULL, 'z' },
		{ "seed", required_argument, NULL, 's' },
		{ "poll", no_argument, NULL, 'p' },
		{ "busyloop", required_argument, NULL, 'L' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	long mix = -1;
	struct thr *thr;
	uint64_t *hist, total = 0, reads = 0, writes = 0, errors = 0, kicks = 0, waits = 0;
	uint64_t wakeups = 0, lat_sum = 0, lat_max = 0, t0, t1;
	double secs;
	int c;
	const char *errmsg = "";

	while ((c = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
		switch (c) {
		case 'B':
			if (!strcmp(optarg, "vhost-blk"))
				opt.backend = BE_VHOST_BLK;
			else if (!strcmp(optarg, "vhost-user"))
				opt.backend = BE_VHOST_USER;
			else if (!strcmp(optarg, "aio"))
				opt.backend = BE_AIO;
			else
				die("--backend %s: expected vhost-blk, vhost-user or aio", optarg);
			break;
		case 'd': opt.dev = optarg; break;
		case 'V': opt.vhost = optarg; break;
		case 'S': opt.socket = optarg; break;
		case 'b': opt.bs = (unsigned int)parse_num("bs", optarg, 512, 1 << 20); break;
		case 'i': opt.iodepth = (unsigned int)parse_num("iodepth", optarg, 1, 1024); break;
		case 'q': opt.queues = (unsigned int)parse_num("queues", optarg, 1, 16); break;
		case 't': opt.threads = (unsigned int)parse_num("threads", optarg, 1, 64); break;
		case 'w': opt.workers = (unsigned int)parse_num("workers", optarg, 1, 16); break;
		case 'r': opt.rw = optarg; break;
		case 'm': mix = (long)parse_num("rwmixread", optarg, 0, 100); break;
		case 'R': opt.runtime = parse_sec("runtime", optarg); break;
		case 'a': opt.ramp = parse_sec("ramp", optarg); break;
		case 'z': opt.size = parse_num("size", optarg, 4096, ~0ul); break;
		case 's': opt.seed = parse_num("seed", optarg, 1, ~0ul); break;
		case 'p': opt.poll = true; break;
		case 'L': opt.busyloop = (unsigned int)parse_num("busyloop", optarg, 0, 1000000); break;
		default: usage();
		}
	}
	if (optind != argc)
		usage();
	if (opt.bs % 512)
		die("--bs %u: must be a multiple of 512", opt.bs);
	if (!strcmp(opt.rw, "randread"))
		opt.rwmixread = 100;
	else if (!strcmp(opt.rw, "randwrite"))
		opt.rwmixread = 0;
	else if (!strcmp(opt.rw, "randrw"))
		opt.rwmixread = mix < 0 ? 50 : (unsigned int)mix;
	else
		die("--rw %s: expected randread, randwrite or randrw", opt.rw);
	if (opt.backend != BE_VHOST_USER && !opt.dev)
		die("--backend vhost-blk and aio need --dev /dev/BLOCKDEVICE");
	if (opt.backend == BE_VHOST_USER && !opt.socket)
		die("--backend vhost-user needs --socket PATH");
	if (opt.backend != BE_VHOST_BLK && opt.workers != 1)
		die("--workers is for vhost-blk only");
	if (opt.threads == 0)
		opt.threads = opt.queues;
	if (opt.threads > opt.queues)
		die("--threads %u: more threads than queues (%u)", opt.threads, opt.queues);
	if (opt.workers > opt.queues)
		die("--workers %u: more workers than queues (%u)", opt.workers, opt.queues);
	if (opt.backend != BE_AIO &&
	    ring_size_for(opt.iodepth) > (opt.backend == BE_VHOST_USER ? 1024u : 32768u))
		die("--iodepth %u: the ring would exceed the backend's maximum size",
		    opt.iodepth);

	if (opt.backend == BE_AIO) {
		setup_aio();
	} else {
		setup_memory();
		if (opt.backend == BE_VHOST_BLK)
			setup_vhost_blk();
		else
			setup_vhost_user();
	}
	if (opt.size)
		dev_bytes = opt.size;
	if (dev_bytes < opt.bs)
		die("the device has %" PRIu64 " bytes, less than one block (use --size)",
		    dev_bytes);

	thr = calloc(opt.threads, sizeof(*thr));
	if (!thr)
		die("out of memory");
	for (unsigned int i = 0; i < opt.threads; i++) {
		struct thr *t = &thr[i];

		t->id = i;
		t->rnd = opt.seed ^ (0x100000001b3ull * (i + 1));
		t->hist = calloc(HIST_BUCKETS, sizeof(uint64_t));
		t->vqs = calloc(opt.queues, sizeof(struct vq *));
		if (!t->hist || !t->vqs)
			die("out of memory");
		for (unsigned int q = i; q < opt.queues; q += opt.threads)
			t->vqs[t->nvqs++] = vqs ? &vqs[q] : NULL;
	}
	for (unsigned int i = 0; i < opt.threads; i++)
		if (pthread_create(&thr[i].tid, NULL,
				   opt.backend == BE_AIO ? aio_thread : thread_main, &thr[i]))
			die("pthread_create failed");
	sleep_sec(opt.ramp);
	t0 = now_ns();
	__atomic_store_n(&phase, 1, __ATOMIC_RELAXED);
	sleep_sec(opt.runtime);
	__atomic_store_n(&phase, 2, __ATOMIC_RELAXED);
	t1 = now_ns();
	hist = calloc(HIST_BUCKETS, sizeof(uint64_t));
	if (!hist)
		die("out of memory");
	for (unsigned int i = 0; i < opt.threads; i++) {
		struct thr *t = &thr[i];

		pthread_join(t->tid, NULL);
		reads += t->reads;
		writes += t->writes;
		errors += t->errors;
		kicks += t->kicks;
		waits += t->waits;
		wakeups += t->wakeups;
		lat_sum += t->lat_sum;
		if (t->lat_max > lat_max)
			lat_max = t->lat_max;
		for (unsigned int b = 0; b < HIST_BUCKETS; b++)
			hist[b] += t->hist[b];
		if (t->err[0])
			errmsg = t->err;
	}
	total = reads + writes;
	secs = (double)(t1 - t0) / 1e9;
	printf("{\"tool\": \"vblk-load\", \"ok\": %s, \"error\": \"%s\", "
	       "\"backend\": \"%s\", \"target\": \"%s\", \"bs\": %u, \"iodepth\": %u, "
	       "\"queues\": %u, \"threads\": %u, \"workers\": %u, \"rw\": \"%s\", "
	       "\"rwmixread\": %u, \"poll\": %s, \"ring_size\": %u, \"features\": %" PRIu64 ", "
	       "\"device_bytes\": %" PRIu64 ", \"seconds\": %.3f, \"ios\": %" PRIu64 ", "
	       "\"read_ios\": %" PRIu64 ", \"write_ios\": %" PRIu64 ", \"errors\": %" PRIu64 ", "
	       "\"iops\": %.1f, \"bw_bytes\": %.1f, \"kicks\": %" PRIu64 ", \"waits\": %" PRIu64
	       ", \"wakeups\": %" PRIu64 ", \"lat_ns\": {\"mean\": %.1f, \"p50\": %" PRIu64
	       ", \"p99\": %" PRIu64 ", \"p99.9\": %" PRIu64 ", \"max\": %" PRIu64 "}}\n",
	       errors || errmsg[0] ? "false" : "true", errmsg,
	       opt.backend == BE_VHOST_BLK ? "vhost-blk" :
	       opt.backend == BE_AIO ? "aio" : "vhost-user",
	       opt.backend == BE_VHOST_USER ? opt.socket : opt.dev, opt.bs, opt.iodepth,
	       opt.queues, opt.threads, opt.workers, opt.rw, opt.rwmixread,
	       opt.poll ? "true" : "false", vqs ? vqs[0].num : 0, features, dev_bytes, secs,
	       total,
	       reads, writes, errors, (double)total / secs, (double)total * opt.bs / secs,
	       kicks, waits, wakeups, total ? (double)lat_sum / (double)total : 0.0,
	       percentile(hist, total, 50), percentile(hist, total, 99),
	       percentile(hist, total, 99.9), lat_max);
	fflush(stdout);
	/* The device first, so the kernel or the server is done with the memory. */
	if (vhost_fd >= 0)
		close(vhost_fd);
	if (vu_fd >= 0)
		close(vu_fd);
	return errors || errmsg[0] ? 1 : 0;
}

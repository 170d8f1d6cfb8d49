/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vring: what the C tools that play a virtio-blk guest driver against
 * /dev/vhost-blk share (vblk-load, the load generator, and vblk-fuzz,
 * the fuzzer).
 *
 * - virtio constants and the split virtqueue layout (virtio 1.x, little
 *   endian on x86);
 * - "guest memory": one memfd region whose guest physical address is its
 *   userspace address, as in tools/vblk and tools/virtio/virtio_test.c,
 *   with a bump allocator;
 * - the vhost ioctls older uAPI headers lack (workers, vhost-blk's own)
 *   and the vhost-blk set-up steps, each returning 0 or -errno so that
 *   the caller decides whether a failure is fatal (vblk-load) or the
 *   answer it expected (vblk-fuzz).
 *
 * Build: add vring.c to the gcc command line of the tool.
 */
#ifndef VBLK_VRING_H
#define VBLK_VRING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/vhost.h>

/* ---- virtio constants ------------------------------------------------------- */

#define F_VERSION_1		32
#define F_RING_INDIRECT_DESC	28
#define F_RING_EVENT_IDX	29
#define F_BLK_MQ		12
#define F_VHOST_USER_PROTOCOL	30

#define F_BLK_SIZE_MAX		1
#define F_BLK_SEG_MAX		2
#define F_BLK_RO		5
#define F_BLK_BLK_SIZE		6
#define F_BLK_FLUSH		9
#define F_BLK_DISCARD		13
#define F_BLK_WRITE_ZEROES	14

#define DESC_F_NEXT	1
#define DESC_F_WRITE	2
#define DESC_F_INDIRECT	4
#define USED_F_NO_NOTIFY 1
#define AVAIL_F_NO_INTERRUPT 1

#define BLK_T_IN		0
#define BLK_T_OUT		1
#define BLK_T_FLUSH		4
#define BLK_T_GET_ID		8
#define BLK_T_DISCARD		11
#define BLK_T_WRITE_ZEROES	13

#define BLK_S_OK	0
#define BLK_S_IOERR	1
#define BLK_S_UNSUPP	2

#define BLK_WZ_FLAG_UNMAP	1
#define BLK_ID_BYTES		20

struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct used_elem {
	uint32_t id;
	uint32_t len;
};

struct blk_outhdr {
	uint32_t type;
	uint32_t ioprio;
	uint64_t sector;
};

struct blk_dwz_seg {
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags;
};

/* struct virtio_blk_config up to write_zeroes_may_unmap (virtio 1.2). */
struct blk_config {
	uint64_t capacity;
	uint32_t size_max;
	uint32_t seg_max;
	uint16_t cylinders;
	uint8_t heads;
	uint8_t sectors;
	uint32_t blk_size;
	uint8_t physical_block_exp;
	uint8_t alignment_offset;
	uint16_t min_io_size;
	uint32_t opt_io_size;
	uint8_t wce;
	uint8_t unused0;
	uint16_t num_queues;
	uint32_t max_discard_sectors;
	uint32_t max_discard_seg;
	uint32_t discard_sector_alignment;
	uint32_t max_write_zeroes_sectors;
	uint32_t max_write_zeroes_seg;
	uint8_t write_zeroes_may_unmap;
	uint8_t unused1[3];
} __attribute__((packed));

/* ---- vhost ioctls that older uAPI headers lack --------------------------------- */

struct vr_worker_state {
	unsigned int worker_id;
};

struct vr_vring_worker {
	unsigned int index;
	unsigned int worker_id;
};

/* struct vhost_vdpa_config: a range of struct virtio_blk_config follows. */
struct vr_config_range {
	uint32_t off;
	uint32_t len;
};

#define VR_VHOST_NEW_WORKER _IOR(VHOST_VIRTIO, 0x8, struct vr_worker_state)
#define VR_VHOST_FREE_WORKER _IOW(VHOST_VIRTIO, 0x9, struct vr_worker_state)
#define VR_VHOST_ATTACH_VRING_WORKER _IOW(VHOST_VIRTIO, 0x15, struct vr_vring_worker)
#define VR_VHOST_GET_VRING_WORKER _IOWR(VHOST_VIRTIO, 0x16, struct vr_vring_worker)
#define VR_VHOST_BLK_SET_BACKEND _IOW(VHOST_VIRTIO, 0xFF, struct vhost_vring_file)
#define VR_VHOST_BLK_SET_SERIAL _IOW(VHOST_VIRTIO, 0xFE, char[BLK_ID_BYTES])
#define VR_VHOST_BLK_GET_CONFIG _IOWR(VHOST_VIRTIO, 0xFD, struct vr_config_range)

/* ---- guest memory ------------------------------------------------------------------ */

/* A memfd mapping; guest physical address == userspace address. */
struct gmem {
	uint8_t *base;
	size_t size;
	size_t bump;	/* gmem_alloc()'s next free offset */
	int fd;
};

/*
 * Create and map @size bytes (zero, like any new memfd); with @populate, fault
 * them all in now and clear them.  0 or -errno, *what says which step.
 */
int gmem_init(struct gmem *m, size_t size, const char *name, bool populate, const char **what);
void gmem_destroy(struct gmem *m);
/* @size bytes aligned to @align (a power of two); NULL if the region is full. */
void *gmem_alloc(struct gmem *m, size_t size, size_t align);
/* The guest address of a pointer into the region (the identity map). */
static inline uint64_t gpa(const void *p)
{
	return (uint64_t)(uintptr_t)p;
}

/* ---- split virtqueue -------------------------------------------------------------------- */

struct vr_ring {
	unsigned int num;
	struct desc *desc;
	uint16_t *avail;	/* flags, idx, ring[num], used_event */
	uint16_t *used_hdr;	/* flags, idx */
	struct used_elem *used_ring;
	uint16_t *avail_event;
};

/* Bytes of the three parts of a ring of @num entries. */
size_t vr_desc_size(unsigned int num);
size_t vr_avail_size(unsigned int num);
size_t vr_used_size(unsigned int num);
/* Lay a ring of @num entries out in @m (desc, avail, used; each page aligned). */
int vr_ring_alloc(struct vr_ring *r, struct gmem *m, unsigned int num);
/* Zero the three parts (a fresh ring, indices 0). */
void vr_ring_clear(struct vr_ring *r);
struct vhost_vring_addr vr_ring_addr(const struct vr_ring *r, unsigned int q);
/* vr_need_event(): did the index move past @event? */
bool vr_need_event(uint16_t event, uint16_t new_idx, uint16_t old);

static inline uint16_t *vr_used_event(const struct vr_ring *r)
{
	return &r->avail[2 + r->num];
}

static inline uint16_t vr_used_idx(const struct vr_ring *r)
{
	return __atomic_load_n(&r->used_hdr[1], __ATOMIC_ACQUIRE);
}

/* ---- vhost-blk set-up ------------------------------------------------------------------- */

/* ioctl(); 0 or -errno. */
int vr_ioctl(int fd, unsigned long req, void *arg);
/* VHOST_SET_MEM_TABLE with one identity-mapped region for @m. */
int vr_set_mem_identity(int fd, const struct gmem *m);
/*
 * NUM, BASE (@base), ADDR, KICK and CALL (and ERR if @err_fd >= 0) for
 * virtqueue @q; on failure *what names the ioctl.
 */
int vr_setup_vring(int fd, unsigned int q, const struct vr_ring *r, uint16_t base, int kick_fd,
		   int call_fd, int err_fd, const char **what);
int vr_new_worker(int fd, unsigned int *id);
int vr_free_worker(int fd, unsigned int id);
int vr_attach_vring_worker(int fd, unsigned int q, unsigned int id);
int vr_get_vring_worker(int fd, unsigned int q, unsigned int *id);
int vr_set_backend(int fd, int bdev_fd);
int vr_set_serial(int fd, const char *serial);
/* @len bytes of the backend's struct virtio_blk_config from offset 0 into @cfg. */
int vr_get_config(int fd, struct blk_config *cfg, uint32_t len);

#endif /* VBLK_VRING_H */

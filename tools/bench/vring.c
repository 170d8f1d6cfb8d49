// SPDX-License-Identifier: GPL-2.0
/*
 * vring: guest memory, split virtqueues and vhost-blk set-up shared by
 * vblk-load and vblk-fuzz.  See vring.h.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vring.h"

/* ---- guest memory ------------------------------------------------------------------ */

int gmem_init(struct gmem *m, size_t size, const char *name, bool populate, const char **what)
{
	memset(m, 0, sizeof(*m));
	m->fd = memfd_create(name, MFD_CLOEXEC);
	if (m->fd < 0) {
		*what = "memfd_create";
		return -errno;
	}
	if (ftruncate(m->fd, (off_t)size) < 0) {
		int err = -errno;

		*what = "ftruncate of the guest memory";
		close(m->fd);
		m->fd = -1;
		return err;
	}
	m->base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | (populate ? MAP_POPULATE : 0),
		       m->fd, 0);
	if (m->base == MAP_FAILED) {
		int err = -errno;

		*what = "mmap of the guest memory";
		m->base = NULL;
		close(m->fd);
		m->fd = -1;
		return err;
	}
	m->size = size;
	if (populate)
		memset(m->base, 0, size);
	return 0;
}

void gmem_destroy(struct gmem *m)
{
	if (m->base)
		munmap(m->base, m->size);
	if (m->fd >= 0)
		close(m->fd);
	m->base = NULL;
	m->fd = -1;
	m->size = m->bump = 0;
}

void *gmem_alloc(struct gmem *m, size_t size, size_t align)
{
	size_t off = (m->bump + align - 1) & ~(align - 1);

	if (off + size > m->size)
		return NULL;
	m->bump = off + size;
	return m->base + off;
}

/* ---- split virtqueue -------------------------------------------------------------------- */

size_t vr_desc_size(unsigned int num)
{
	return 16 * (size_t)num;
}

size_t vr_avail_size(unsigned int num)
{
	return 2 * (3 + (size_t)num);
}

size_t vr_used_size(unsigned int num)
{
	return 6 + 8 * (size_t)num;
}

int vr_ring_alloc(struct vr_ring *r, struct gmem *m, unsigned int num)
{
	r->num = num;
	r->desc = gmem_alloc(m, vr_desc_size(num), 4096);
	r->avail = gmem_alloc(m, vr_avail_size(num), 4096);
	r->used_hdr = gmem_alloc(m, vr_used_size(num), 4096);
	if (!r->desc || !r->avail || !r->used_hdr)
		return -ENOMEM;
	r->used_ring = (struct used_elem *)(r->used_hdr + 2);
	r->avail_event = (uint16_t *)&r->used_ring[num];
	return 0;
}

void vr_ring_clear(struct vr_ring *r)
{
	memset(r->desc, 0, vr_desc_size(r->num));
	memset(r->avail, 0, vr_avail_size(r->num));
	memset(r->used_hdr, 0, vr_used_size(r->num));
}

struct vhost_vring_addr vr_ring_addr(const struct vr_ring *r, unsigned int q)
{
	return (struct vhost_vring_addr){
		.index = q,
		.desc_user_addr = gpa(r->desc),
		.avail_user_addr = gpa(r->avail),
		.used_user_addr = gpa(r->used_hdr),
	};
}

bool vr_need_event(uint16_t event, uint16_t new_idx, uint16_t old)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

/* ---- vhost-blk set-up ------------------------------------------------------------------- */

int vr_ioctl(int fd, unsigned long req, void *arg)
{
	return ioctl(fd, req, arg) < 0 ? -errno : 0;
}

int vr_set_mem_identity(int fd, const struct gmem *m)
{
	struct {
		struct vhost_memory hdr;
		struct vhost_memory_region region;
	} table;

	memset(&table, 0, sizeof(table));
	table.hdr.nregions = 1;
	table.region.guest_phys_addr = gpa(m->base);
	table.region.userspace_addr = gpa(m->base);
	table.region.memory_size = m->size;
	return vr_ioctl(fd, VHOST_SET_MEM_TABLE, &table);
}

int vr_setup_vring(int fd, unsigned int q, const struct vr_ring *r, uint16_t base, int kick_fd,
		   int call_fd, int err_fd, const char **what)
{
	struct vhost_vring_state st = { q, r->num };
	struct vhost_vring_addr addr = vr_ring_addr(r, q);
	struct vhost_vring_file file;
	int ret;

	*what = "VHOST_SET_VRING_NUM";
	ret = vr_ioctl(fd, VHOST_SET_VRING_NUM, &st);
	if (ret)
		return ret;
	st.num = base;
	*what = "VHOST_SET_VRING_BASE";
	ret = vr_ioctl(fd, VHOST_SET_VRING_BASE, &st);
	if (ret)
		return ret;
	*what = "VHOST_SET_VRING_ADDR";
	ret = vr_ioctl(fd, VHOST_SET_VRING_ADDR, &addr);
	if (ret)
		return ret;
	file = (struct vhost_vring_file){ q, kick_fd };
	*what = "VHOST_SET_VRING_KICK";
	ret = vr_ioctl(fd, VHOST_SET_VRING_KICK, &file);
	if (ret)
		return ret;
	file = (struct vhost_vring_file){ q, call_fd };
	*what = "VHOST_SET_VRING_CALL";
	ret = vr_ioctl(fd, VHOST_SET_VRING_CALL, &file);
	if (ret || err_fd < 0)
		return ret;
	file = (struct vhost_vring_file){ q, err_fd };
	*what = "VHOST_SET_VRING_ERR";
	return vr_ioctl(fd, VHOST_SET_VRING_ERR, &file);
}

int vr_new_worker(int fd, unsigned int *id)
{
	struct vr_worker_state ws = { 0 };
	int ret = vr_ioctl(fd, VR_VHOST_NEW_WORKER, &ws);

	if (!ret)
		*id = ws.worker_id;
	return ret;
}

int vr_free_worker(int fd, unsigned int id)
{
	struct vr_worker_state ws = { id };

	return vr_ioctl(fd, VR_VHOST_FREE_WORKER, &ws);
}

int vr_attach_vring_worker(int fd, unsigned int q, unsigned int id)
{
	struct vr_vring_worker vw = { q, id };

	return vr_ioctl(fd, VR_VHOST_ATTACH_VRING_WORKER, &vw);
}

int vr_get_vring_worker(int fd, unsigned int q, unsigned int *id)
{
	struct vr_vring_worker vw = { q, 0 };
	int ret = vr_ioctl(fd, VR_VHOST_GET_VRING_WORKER, &vw);

	if (!ret)
		*id = vw.worker_id;
	return ret;
}

int vr_set_backend(int fd, int bdev_fd)
{
	struct vhost_vring_file file = { 0, bdev_fd };

	return vr_ioctl(fd, VR_VHOST_BLK_SET_BACKEND, &file);
}

int vr_set_serial(int fd, const char *serial)
{
	char buf[BLK_ID_BYTES] = { 0 };

	memcpy(buf, serial, strnlen(serial, sizeof(buf)));
	return vr_ioctl(fd, VR_VHOST_BLK_SET_SERIAL, buf);
}

int vr_get_config(int fd, struct blk_config *cfg, uint32_t len)
{
	struct {
		struct vr_config_range range;
		struct blk_config cfg;
	} __attribute__((packed)) buf;
	int ret;

	if (len > sizeof(buf.cfg))
		return -EINVAL;
	memset(&buf, 0, sizeof(buf));
	buf.range = (struct vr_config_range){ .off = 0, .len = len };
	ret = vr_ioctl(fd, VR_VHOST_BLK_GET_CONFIG, &buf);
	if (!ret) {
		memset(cfg, 0, sizeof(*cfg));
		memcpy(cfg, &buf.cfg, len);
	}
	return ret;
}

"""A userspace virtio-blk driver ("guest") for /dev/vhost-blk.

uapi: ioctl numbers, structures and constants; memory: the guest memory
region and its allocator; vring: split virtqueues; device: the vhost-blk
device and its virtqueues; request: building, submitting and completing
requests.  Importable without /dev/vhost-blk.
"""

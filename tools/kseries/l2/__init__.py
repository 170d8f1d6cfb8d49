"""The L2 guest: an unmodified Debian kernel on vhost-blk-pci, inside the VM.

``manifest`` reads l2-guest/manifest.toml, ``modules`` orders kernel
modules by their dependencies, ``libs`` finds what a program links,
``image`` writes build/l2/vmlinuz and build/l2/initrd.img, and ``cli``
is ``kseries l2 build``.  tests/guest/test_l2.py boots the image with
the project's QEMU under KVM in the project's VM.
"""

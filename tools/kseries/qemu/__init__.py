"""The project's QEMU: the pinned 10.0.2 source, patches/qemu, one build.

``kseries qemu fetch`` downloads and imports the pinned tree,
``kseries qemu build`` applies patches/qemu and builds
qemu-system-x86_64, qemu-storage-daemon and the qos-test qtest binary
into build/qemu/.
"""

"""kseries: fetch, patch, build, test and boot a kernel patch series."""

__version__ = "0.1.0"

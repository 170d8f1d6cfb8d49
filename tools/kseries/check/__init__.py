"""check-series: check a kernel patch series patch by patch.

Each patch is applied with ``git am`` on top of the previous one in a
separate git worktree, then every selected check (a plug-in module under
``kseries.check.checks``) runs on it.  Warnings are counted against a
patch only when they are new relative to the previous patch.  Results
go to a terminal matrix and to JSON, JUnit XML, HTML and patchwork
reports under the output directory.
"""

"""kseries bench: vhost-blk against the direct block device and vhost-user-blk.

matrix plans the cases and the command of each, guest runs them inside
the VM (standard library only), results parses what the tools printed
and computes ratios, report renders the table and the plot, runner
builds, boots and collects, cli registers ``kseries bench``.
"""

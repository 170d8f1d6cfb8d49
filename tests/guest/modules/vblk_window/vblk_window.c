// SPDX-License-Identifier: GPL-2.0
/*
 * vblk_window: a test-only module that holds a vhost-blk completer in the
 * window between publishing a finished request and queueing the work
 * that completes it (vhost_blk_req_put(): llist_add(), then
 * vhost_vq_work_queue()).
 *
 * A kprobe on vhost_vq_work_queue() busy-waits for delay_ms when it is
 * called from a completion context (interrupt or kworker), at most
 * "armed" times.  tests/guest/test_release_race.py loads it, completes
 * the request through another pass of the worker meanwhile, and closes
 * the device: the device must not be freed while the completer still
 * holds a pointer into it.  "in_delay" tells the test that the completer
 * is inside the window; "hits" how often it was held.
 *
 * Load and remove it while no vhost-blk device exists: the kprobe
 * patches the text of a function that then runs on no CPU.
 */
#include <linux/delay.h>
#include <linux/kprobes.h>
#include <linux/module.h>
#include <linux/preempt.h>
#include <linux/sched.h>
#include <linux/workqueue.h>

static unsigned int delay_ms = 3000;
module_param(delay_ms, uint, 0644);
MODULE_PARM_DESC(delay_ms, "how long to hold a completer in the window");

static int armed;
module_param(armed, int, 0644);
MODULE_PARM_DESC(armed, "how many completers to hold");

static int in_delay;
module_param(in_delay, int, 0444);
MODULE_PARM_DESC(in_delay, "1 while a completer is held");

static int hits;
module_param(hits, int, 0444);
MODULE_PARM_DESC(hits, "completers held so far");

static int vblk_window_pre(struct kprobe *p, struct pt_regs *regs)
{
	if (!in_interrupt() && !(current->flags & PF_WQ_WORKER))
		return 0;
	if (READ_ONCE(armed) <= 0)
		return 0;
	WRITE_ONCE(armed, armed - 1);
	WRITE_ONCE(hits, hits + 1);
	WRITE_ONCE(in_delay, 1);
	mdelay(READ_ONCE(delay_ms));
	WRITE_ONCE(in_delay, 0);
	return 0;
}

static struct kprobe vblk_window_kp = {
	.symbol_name = "vhost_vq_work_queue",
	.pre_handler = vblk_window_pre,
};

static int __init vblk_window_init(void)
{
	return register_kprobe(&vblk_window_kp);
}

static void __exit vblk_window_exit(void)
{
	unregister_kprobe(&vblk_window_kp);
}

module_init(vblk_window_init);
module_exit(vblk_window_exit);
MODULE_DESCRIPTION("vhost-blk test: hold a completer between llist_add and queueing its work");
MODULE_LICENSE("GPL");

// SPDX-License-Identifier: GPL-2.0
/*
 * cfifo: /dev/cfifo, the C reference for `cargo xtask bench chardev`. The same device as
 * /dev/rustpipe, written the way a C driver author would: one kfifo under a mutex, blocking
 * interruptible read/write on two wait queues, a wake-up after every transfer.
 */
#include <linux/fs.h>
#include <linux/kfifo.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/sched/signal.h>
#include <linux/wait.h>

static unsigned int capacity = 4096;
module_param(capacity, uint, 0444);
MODULE_PARM_DESC(capacity, "FIFO capacity in bytes (rounded up to a power of two)");

static DEFINE_MUTEX(lock);
static DECLARE_WAIT_QUEUE_HEAD(readable);
static DECLARE_WAIT_QUEUE_HEAD(writable);
static DECLARE_KFIFO_PTR(fifo, unsigned char);

static ssize_t cfifo_read(struct file *file, char __user *buf, size_t count, loff_t *pos)
{
	unsigned int copied;
	int ret;

	if (!count)
		return 0;
	if (mutex_lock_interruptible(&lock))
		return -ERESTARTSYS;
	while (kfifo_is_empty(&fifo)) {
		mutex_unlock(&lock);
		if (file->f_flags & O_NONBLOCK)
			return -EAGAIN;
		if (wait_event_interruptible(readable, !kfifo_is_empty(&fifo)))
			return -ERESTARTSYS;
		if (mutex_lock_interruptible(&lock))
			return -ERESTARTSYS;
	}
	ret = kfifo_to_user(&fifo, buf, count, &copied);
	mutex_unlock(&lock);
	wake_up_interruptible(&writable);
	return copied ? copied : ret;
}

static ssize_t cfifo_write(struct file *file, const char __user *buf, size_t count, loff_t *pos)
{
	unsigned int copied;
	int ret;

	if (!count)
		return 0;
	if (mutex_lock_interruptible(&lock))
		return -ERESTARTSYS;
	while (kfifo_is_full(&fifo)) {
		mutex_unlock(&lock);
		if (file->f_flags & O_NONBLOCK)
			return -EAGAIN;
		if (wait_event_interruptible(writable, !kfifo_is_full(&fifo)))
			return -ERESTARTSYS;
		if (mutex_lock_interruptible(&lock))
			return -ERESTARTSYS;
	}
	ret = kfifo_from_user(&fifo, buf, count, &copied);
	mutex_unlock(&lock);
	wake_up_interruptible(&readable);
	return copied ? copied : ret;
}

static const struct file_operations cfifo_fops = {
	.owner = THIS_MODULE,
	.open = stream_open,
	.read = cfifo_read,
	.write = cfifo_write,
	.llseek = no_llseek,
};

static struct miscdevice cfifo_dev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "cfifo",
	.fops = &cfifo_fops,
};

static int __init cfifo_init(void)
{
	int ret = kfifo_alloc(&fifo, capacity, GFP_KERNEL);

	if (ret)
		return ret;
	ret = misc_register(&cfifo_dev);
	if (ret)
		kfifo_free(&fifo);
	return ret;
}

static void __exit cfifo_exit(void)
{
	misc_deregister(&cfifo_dev);
	kfifo_free(&fifo);
}

module_init(cfifo_init);
module_exit(cfifo_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("cfifo: C kfifo misc device, the reference of the chardev benchmark");

// SPDX-License-Identifier: GPL-2.0
/*
 * fs: open files, file operations, poll.
 *
 * bindgen functions: stream_open generic_file_llseek_size
 * bindgen types: file_operations poll_table_struct
 * bindgen opaque: file inode
 */
#include <linux/fs.h>
#include <linux/poll.h>

const __poll_t RUST_CONST_EPOLLIN = EPOLLIN;
const __poll_t RUST_CONST_EPOLLOUT = EPOLLOUT;
const __poll_t RUST_CONST_EPOLLRDNORM = EPOLLRDNORM;
const __poll_t RUST_CONST_EPOLLWRNORM = EPOLLWRNORM;
const __poll_t RUST_CONST_EPOLLERR = EPOLLERR;
const __poll_t RUST_CONST_EPOLLHUP = EPOLLHUP;
const unsigned int RUST_CONST_O_NONBLOCK = O_NONBLOCK;

unsigned int rust_helper_file_flags(const struct file *file)
{
	return file->f_flags;
}

void *rust_helper_file_private(const struct file *file)
{
	return file->private_data;
}

void rust_helper_file_set_private(struct file *file, void *data)
{
	file->private_data = data;
}

void rust_helper_poll_wait(struct file *file, struct wait_queue_head *wq, poll_table *pt)
{
	poll_wait(file, wq, pt);
}


// SPDX-License-Identifier: GPL-2.0
/*
 * debugfs: a module's read-only counters, one file each, under /sys/kernel/debug/<module>/.
 *
 * A counter file holds a pointer to a Rust `extern "C" fn() -> u64` (a `static`, so the
 * pointer is to data, as C requires) and prints its value on every read. The attribute is
 * DEFINE_DEBUGFS_ATTRIBUTE's: its file_operations name this module as their owner and take
 * debugfs_file_get() around each read, so a file may be created with
 * debugfs_create_file_unsafe() and removal waits only for reads already running.
 *
 * bindgen functions: debugfs_remove
 * bindgen opaque: dentry
 */
#include <linux/debugfs.h>
#include <linux/err.h>

typedef u64 (*rust_counter_fn)(void);

static int rust_counter_get(void *data, u64 *val)
{
	*val = (*(const rust_counter_fn *)data)();
	return 0;
}
DEFINE_DEBUGFS_ATTRIBUTE(rust_counter_fops, rust_counter_get, NULL, "%llu\n");

/* A directory at the top of debugfs, or NULL (no debugfs, a name taken, no memory). */
struct dentry *rust_helper_debugfs_create_dir(const char *name)
{
	struct dentry *dir = debugfs_create_dir(name, NULL);

	return IS_ERR(dir) ? NULL : dir;
}

/* A 0444 file in `dir` printing (*get)() on each read; a failure only means no file. */
void rust_helper_debugfs_create_counter(const char *name, struct dentry *dir,
					const rust_counter_fn *get)
{
	debugfs_create_file_unsafe(name, 0444, dir, (void *)get, &rust_counter_fops);
}

// SPDX-License-Identifier: GPL-2.0
/*
 * alloc: kmalloc-family memory (krealloc/kfree), kvmalloc (kmalloc falling back to vmalloc for
 * large sizes), GFP flags, the page size and kmalloc's limits.
 *
 * bindgen functions: krealloc kfree
 */
#include <linux/mm.h>
#include <linux/slab.h>

const gfp_t RUST_CONST_GFP_KERNEL = GFP_KERNEL;
const gfp_t RUST_CONST_GFP_ATOMIC = GFP_ATOMIC;
const gfp_t RUST_CONST_GFP_NOWAIT = GFP_NOWAIT;
const gfp_t RUST_CONST___GFP_ZERO = __GFP_ZERO;
const gfp_t RUST_CONST___GFP_NOWARN = __GFP_NOWARN;
const size_t RUST_CONST_ARCH_SLAB_MINALIGN = ARCH_SLAB_MINALIGN;
const size_t RUST_CONST_ARCH_KMALLOC_MINALIGN = ARCH_KMALLOC_MINALIGN;
const size_t RUST_CONST_PAGE_SIZE = PAGE_SIZE;
const size_t RUST_CONST_KMALLOC_MAX_SIZE = KMALLOC_MAX_SIZE;

void *rust_helper_kvmalloc(size_t size, gfp_t flags)
{
	return kvmalloc(size, flags);
}

void rust_helper_kvfree(const void *p)
{
	kvfree(p);
}

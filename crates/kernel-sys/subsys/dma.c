// SPDX-License-Identifier: GPL-2.0
/*
 * dma: DMA masks and coherent allocations (memory both the CPU and a device access, mapped
 * for the device for as long as it is allocated).
 *
 * bindgen opaque: device
 */
#include <linux/dma-mapping.h>

int rust_helper_dma_set_mask_and_coherent(struct device *dev, u64 mask)
{
	return dma_set_mask_and_coherent(dev, mask);
}

void *rust_helper_dma_alloc_coherent(struct device *dev, size_t size, dma_addr_t *handle,
				     gfp_t gfp)
{
	return dma_alloc_coherent(dev, size, handle, gfp);
}

void rust_helper_dma_free_coherent(struct device *dev, size_t size, void *cpu, dma_addr_t handle)
{
	dma_free_coherent(dev, size, cpu, handle);
}

/* Orders reads of DMA memory: a completion's phase bit before the rest of the entry. */
void rust_helper_dma_rmb(void)
{
	dma_rmb();
}

/* Orders writes to DMA memory before later writes to it (MMIO writes are ordered by writel). */
void rust_helper_dma_wmb(void)
{
	dma_wmb();
}

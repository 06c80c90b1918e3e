// SPDX-License-Identifier: GPL-2.0
/*
 * io: memory-mapped I/O with the kernel's accessors, so ordering is C's on every architecture
 * (writel orders earlier writes to DMA memory before the device sees the MMIO write; readl
 * orders later reads of DMA memory after it).
 */
#include <linux/io.h>
#include <linux/io-64-nonatomic-lo-hi.h>

u32 rust_helper_readl(const volatile void __iomem *addr)
{
	return readl(addr);
}

void rust_helper_writel(u32 value, volatile void __iomem *addr)
{
	writel(value, addr);
}

u64 rust_helper_readq(const volatile void __iomem *addr)
{
	return readq(addr);
}

void rust_helper_writeq(u64 value, volatile void __iomem *addr)
{
	writeq(value, addr);
}

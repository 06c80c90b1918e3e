// SPDX-License-Identifier: GPL-2.0
/*
 * io: memory-mapped I/O with the kernel's accessors, so ordering is C's on every architecture
 * (writeX orders earlier writes to DMA memory before the device sees the MMIO write; readX
 * orders later reads of DMA memory after it), and regions a driver maps itself. The accessors
 * and ioremap are macros or inline functions on arm64.
 *
 * bindgen types: resource
 */
#include <linux/io.h>
#include <linux/io-64-nonatomic-lo-hi.h>
#include <linux/ioport.h>

u8 rust_helper_readb(const volatile void __iomem *addr)
{
	return readb(addr);
}

void rust_helper_writeb(u8 value, volatile void __iomem *addr)
{
	writeb(value, addr);
}

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

void __iomem *rust_helper_ioremap(resource_size_t start, size_t size)
{
	return ioremap(start, size);
}

void rust_helper_iounmap(volatile void __iomem *addr)
{
	iounmap(addr);
}

/* request_mem_region(): NULL when the range is busy (another driver holds it). */
struct resource *rust_helper_request_mem_region(resource_size_t start, resource_size_t n,
						const char *name)
{
	return request_mem_region(start, n, name);
}

void rust_helper_release_mem_region(resource_size_t start, resource_size_t n)
{
	release_mem_region(start, n);
}

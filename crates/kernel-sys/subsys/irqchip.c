// SPDX-License-Identifier: GPL-2.0
/*
 * irqchip: interrupt chips (struct irq_chip), their per-interrupt irq_data, flow handlers, and
 * chained handlers (a demultiplexing parent interrupt).
 *
 * bindgen functions: handle_level_irq handle_edge_irq handle_bad_irq
 * bindgen types: irq_chip irq_data
 * bindgen opaque: irq_desc irq_data irq_common_data msi_msg seq_file
 */
#include <linux/irq.h>
#include <linux/irqchip/chained_irq.h>
#include <linux/irqdesc.h>

const unsigned int RUST_CONST_IRQ_TYPE_NONE = IRQ_TYPE_NONE;
const unsigned int RUST_CONST_IRQ_TYPE_EDGE_RISING = IRQ_TYPE_EDGE_RISING;
const unsigned int RUST_CONST_IRQ_TYPE_EDGE_FALLING = IRQ_TYPE_EDGE_FALLING;
const unsigned int RUST_CONST_IRQ_TYPE_LEVEL_HIGH = IRQ_TYPE_LEVEL_HIGH;
const unsigned int RUST_CONST_IRQ_TYPE_LEVEL_LOW = IRQ_TYPE_LEVEL_LOW;
const unsigned long RUST_CONST_IRQCHIP_IMMUTABLE = IRQCHIP_IMMUTABLE;

void *rust_helper_irq_data_get_irq_chip_data(struct irq_data *d)
{
	return irq_data_get_irq_chip_data(d);
}

unsigned long rust_helper_irqd_to_hwirq(struct irq_data *d)
{
	return irqd_to_hwirq(d);
}

void rust_helper_irq_set_handler_locked(struct irq_data *d, irq_flow_handler_t handler)
{
	irq_set_handler_locked(d, handler);
}

void *rust_helper_irq_desc_get_handler_data(struct irq_desc *desc)
{
	return irq_desc_get_handler_data(desc);
}

struct irq_chip *rust_helper_irq_desc_get_chip(struct irq_desc *desc)
{
	return irq_desc_get_chip(desc);
}

void rust_helper_chained_irq_enter(struct irq_chip *chip, struct irq_desc *desc)
{
	chained_irq_enter(chip, desc);
}

void rust_helper_chained_irq_exit(struct irq_chip *chip, struct irq_desc *desc)
{
	chained_irq_exit(chip, desc);
}

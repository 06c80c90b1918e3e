// SPDX-License-Identifier: GPL-2.0
/*
 * gpio: gpiolib providers (struct gpio_chip), with an optional irqchip for the lines fed by a
 * chained parent interrupt (gpiolib's `girq`).
 *
 * Everything goes through helpers, with stubs where the kernel has no gpiolib (or no gpiolib
 * irqchip, e.g. our tinyconfig-based debug kernel): a module using them then still builds and
 * links against every kernel, and fails to register at run time (-ENODEV/-EOPNOTSUPP).
 *
 * bindgen types: gpio_chip
 * bindgen opaque: gpio_irq_chip gpio_desc gpio_device irq_domain
 * bindgen no-copy: gpio_chip
 */
#include <linux/errno.h>
#include <linux/gpio.h>
#include <linux/gpio/driver.h>
#include <linux/irq.h>
#include <linux/irqdesc.h>

const int RUST_CONST_GPIO_LINE_DIRECTION_IN = GPIO_LINE_DIRECTION_IN;
const int RUST_CONST_GPIO_LINE_DIRECTION_OUT = GPIO_LINE_DIRECTION_OUT;

#ifdef CONFIG_GPIOLIB

/* gpiochip_add_data is a macro (a lockdep class per call site: here, one for all our chips). */
int rust_helper_gpiochip_add_data(struct gpio_chip *gc, void *data)
{
	return gpiochip_add_data(gc, data);
}

void rust_helper_gpiochip_remove(struct gpio_chip *gc)
{
	gpiochip_remove(gc);
}

int rust_helper_gpiochip_generic_request(struct gpio_chip *gc, unsigned int offset)
{
	return gpiochip_generic_request(gc, offset);
}

void rust_helper_gpiochip_generic_free(struct gpio_chip *gc, unsigned int offset)
{
	gpiochip_generic_free(gc, offset);
}

void rust_helper_gpiochip_enable_irq(struct gpio_chip *gc, unsigned int offset)
{
	gpiochip_enable_irq(gc, offset);
}

void rust_helper_gpiochip_disable_irq(struct gpio_chip *gc, unsigned int offset)
{
	gpiochip_disable_irq(gc, offset);
}

/*
 * A kernel consumer's line, by global number (the legacy interface: a test consumer of a chip
 * found through sysfs, with no firmware node naming the line for it).
 */
int rust_helper_gpio_request_input(unsigned int gpio, const char *label)
{
	return gpio_request_one(gpio, GPIOF_IN, label);
}

void rust_helper_gpio_free(unsigned int gpio)
{
	gpio_free(gpio);
}

int rust_helper_gpio_get_value(unsigned int gpio)
{
	return gpio_get_value(gpio);
}

int rust_helper_gpio_to_irq(unsigned int gpio)
{
	return gpio_to_irq(gpio);
}

#else /* !CONFIG_GPIOLIB */

int rust_helper_gpio_request_input(unsigned int gpio, const char *label)
{
	return -ENODEV;
}

void rust_helper_gpio_free(unsigned int gpio)
{
}

int rust_helper_gpio_get_value(unsigned int gpio)
{
	return -ENODEV;
}

int rust_helper_gpio_to_irq(unsigned int gpio)
{
	return -ENODEV;
}

int rust_helper_gpiochip_add_data(struct gpio_chip *gc, void *data)
{
	return -ENODEV;
}

void rust_helper_gpiochip_remove(struct gpio_chip *gc)
{
}

int rust_helper_gpiochip_generic_request(struct gpio_chip *gc, unsigned int offset)
{
	return 0;
}

void rust_helper_gpiochip_generic_free(struct gpio_chip *gc, unsigned int offset)
{
}

void rust_helper_gpiochip_enable_irq(struct gpio_chip *gc, unsigned int offset)
{
}

void rust_helper_gpiochip_disable_irq(struct gpio_chip *gc, unsigned int offset)
{
}

#endif /* CONFIG_GPIOLIB */

#ifdef CONFIG_GPIOLIB_IRQCHIP

/*
 * Sets up gc->irq (before gpiochip_add_data) as the C PL061 driver does: an immutable irq_chip,
 * a chained handler on `num_parents` parent interrupts, lines with no trigger until a consumer
 * asks for one (handle_bad_irq, IRQ_TYPE_NONE).
 */
int rust_helper_gpio_chip_set_irq(struct gpio_chip *gc, const struct irq_chip *chip,
				  irq_flow_handler_t parent_handler, unsigned int *parents,
				  unsigned int num_parents)
{
	struct gpio_irq_chip *girq = &gc->irq;

	gpio_irq_chip_set_chip(girq, chip);
	girq->parent_handler = parent_handler;
	girq->num_parents = num_parents;
	girq->parents = parents;
	girq->default_type = IRQ_TYPE_NONE;
	girq->handler = handle_bad_irq;
	return 0;
}

/* Runs the handlers of line `offset`'s interrupt (from the chained parent handler). */
int rust_helper_gpio_chip_handle_irq(struct gpio_chip *gc, unsigned int offset)
{
	return generic_handle_domain_irq(gc->irq.domain, offset);
}

int rust_helper_gpiochip_irq_reqres(struct irq_data *d)
{
	return gpiochip_irq_reqres(d);
}

void rust_helper_gpiochip_irq_relres(struct irq_data *d)
{
	gpiochip_irq_relres(d);
}

#else /* !CONFIG_GPIOLIB_IRQCHIP */

int rust_helper_gpio_chip_set_irq(struct gpio_chip *gc, const struct irq_chip *chip,
				  irq_flow_handler_t parent_handler, unsigned int *parents,
				  unsigned int num_parents)
{
	return -EOPNOTSUPP;
}

int rust_helper_gpio_chip_handle_irq(struct gpio_chip *gc, unsigned int offset)
{
	return -EINVAL;
}

int rust_helper_gpiochip_irq_reqres(struct irq_data *d)
{
	return -ENODEV;
}

void rust_helper_gpiochip_irq_relres(struct irq_data *d)
{
}

#endif /* CONFIG_GPIOLIB_IRQCHIP */

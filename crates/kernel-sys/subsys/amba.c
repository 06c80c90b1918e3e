// SPDX-License-Identifier: GPL-2.0
/*
 * amba: ARM PrimeCell (AMBA) bus drivers, matched by peripheral ID. Without CONFIG_ARM_AMBA
 * (x86_64) the header's inline stubs make registration fail with -EINVAL: going through the
 * helpers, the same module builds everywhere.
 *
 * bindgen types: amba_id amba_driver amba_device
 * bindgen opaque: amba_device device_driver
 */
#include <linux/amba/bus.h>
#include <linux/device.h>

/*
 * The embedded struct device_driver stays opaque to Rust (its bus_type, iommu_ops, ... would
 * drag half the kernel's types into the bindings): its two fields drivers set, here.
 */
void rust_helper_amba_driver_set_name(struct amba_driver *drv, const char *name,
				      struct module *owner)
{
	drv->drv.name = name;
	drv->drv.owner = owner;
}

int rust_helper_amba_driver_register(struct amba_driver *drv)
{
	return amba_driver_register(drv);
}

void rust_helper_amba_driver_unregister(struct amba_driver *drv)
{
	amba_driver_unregister(drv);
}

struct device *rust_helper_amba_device_dev(struct amba_device *adev)
{
	return &adev->dev;
}

void *rust_helper_amba_get_drvdata(struct amba_device *adev)
{
	return amba_get_drvdata(adev);
}

void rust_helper_amba_set_drvdata(struct amba_device *adev, void *data)
{
	amba_set_drvdata(adev, data);
}

resource_size_t rust_helper_amba_device_mem_start(const struct amba_device *adev)
{
	return adev->res.start;
}

resource_size_t rust_helper_amba_device_mem_size(const struct amba_device *adev)
{
	return resource_size(&adev->res);
}

unsigned int rust_helper_amba_device_irq(const struct amba_device *adev, unsigned int index)
{
	return index < AMBA_NR_IRQS ? adev->irq[index] : 0;
}

unsigned int rust_helper_amba_device_periphid(const struct amba_device *adev)
{
	return adev->periphid;
}

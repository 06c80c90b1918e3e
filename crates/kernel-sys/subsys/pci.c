// SPDX-License-Identifier: GPL-2.0
/*
 * pci: PCI drivers (registration, ID tables, probe/remove), enabling a function, bus mastering,
 * memory regions and BAR mappings. `struct pci_dev` stays opaque: its fields are read through
 * helpers.
 *
 * bindgen functions: __pci_register_driver pci_unregister_driver
 * bindgen functions: pci_enable_device_mem pci_disable_device pci_set_master pci_clear_master
 * bindgen functions: pci_request_selected_regions pci_release_selected_regions pci_iomap pci_iounmap
 * bindgen functions: pci_select_bars
 * bindgen types: pci_driver pci_device_id
 * bindgen opaque: pci_dev device
 */
#include <linux/pci.h>

const unsigned long RUST_CONST_IORESOURCE_MEM = IORESOURCE_MEM;

struct device *rust_helper_pci_dev_device(struct pci_dev *pdev)
{
	return &pdev->dev;
}

unsigned short rust_helper_pci_dev_vendor(const struct pci_dev *pdev)
{
	return pdev->vendor;
}

unsigned short rust_helper_pci_dev_device_id(const struct pci_dev *pdev)
{
	return pdev->device;
}

unsigned int rust_helper_pci_dev_class(const struct pci_dev *pdev)
{
	return pdev->class;
}

unsigned char rust_helper_pci_dev_revision(const struct pci_dev *pdev)
{
	return pdev->revision;
}

unsigned long long rust_helper_pci_resource_len(const struct pci_dev *pdev, int bar)
{
	return pci_resource_len(pdev, bar);
}

unsigned long rust_helper_pci_resource_flags(const struct pci_dev *pdev, int bar)
{
	return pci_resource_flags(pdev, bar);
}

void *rust_helper_pci_get_drvdata(struct pci_dev *pdev)
{
	return pci_get_drvdata(pdev);
}

void rust_helper_pci_set_drvdata(struct pci_dev *pdev, void *data)
{
	pci_set_drvdata(pdev, data);
}

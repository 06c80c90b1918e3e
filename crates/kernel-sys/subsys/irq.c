// SPDX-License-Identifier: GPL-2.0
/*
 * irq: interrupt handlers (request_irq/free_irq) and a PCI function's interrupt vectors
 * (MSI-X, MSI or the legacy pin).
 *
 * bindgen functions: request_threaded_irq free_irq pci_alloc_irq_vectors_affinity
 * bindgen functions: pci_free_irq_vectors pci_irq_vector
 * bindgen opaque: pci_dev
 */
#include <linux/interrupt.h>
#include <linux/pci.h>

const unsigned int RUST_CONST_PCI_IRQ_LEGACY = PCI_IRQ_LEGACY;
const unsigned int RUST_CONST_PCI_IRQ_MSI = PCI_IRQ_MSI;
const unsigned int RUST_CONST_PCI_IRQ_MSIX = PCI_IRQ_MSIX;
const unsigned int RUST_CONST_IRQF_SHARED = IRQF_SHARED;
const unsigned int RUST_CONST_IRQF_ONESHOT = IRQF_ONESHOT;
const int RUST_CONST_IRQ_NONE = IRQ_NONE;
const int RUST_CONST_IRQ_HANDLED = IRQ_HANDLED;
const int RUST_CONST_IRQ_WAKE_THREAD = IRQ_WAKE_THREAD;

/*
 * pci_alloc_irq_vectors() with managed affinity (PCI_IRQ_AFFINITY): the first `pre_vectors`
 * keep the default affinity, the others are spread evenly over the CPUs and kept there by the
 * kernel (blk_mq_pci_map_queues() then gives each hardware queue the CPUs of its vector).
 */
int rust_helper_pci_alloc_irq_vectors_spread(struct pci_dev *pdev, unsigned int min,
					     unsigned int max, unsigned int flags,
					     unsigned int pre_vectors)
{
	struct irq_affinity affd = { .pre_vectors = pre_vectors };

	return pci_alloc_irq_vectors_affinity(pdev, min, max, flags | PCI_IRQ_AFFINITY, &affd);
}

/* Whether the function uses MSI-X (its vectors are then masked per vector, not with INTMS). */
bool rust_helper_pci_msix_enabled(struct pci_dev *pdev)
{
	return pdev->msix_enabled;
}

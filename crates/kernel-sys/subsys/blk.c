// SPDX-License-Identifier: GPL-2.0
/*
 * blk: blk-mq block devices (tag sets, requests, gendisks, queue limits) and the scatterlists
 * a request's data is mapped through for DMA.
 *
 * The tag set, the request and the gendisk stay opaque: their fields are set and read through
 * the helpers below.
 *
 * bindgen functions: blk_mq_alloc_tag_set blk_mq_free_tag_set put_disk
 * bindgen functions: del_gendisk device_add_disk set_capacity blk_mq_start_request
 * bindgen functions: blk_mq_end_request blk_queue_logical_block_size blk_queue_physical_block_size
 * bindgen functions: blk_queue_max_hw_sectors blk_queue_max_segments blk_queue_virt_boundary
 * bindgen functions: blk_queue_max_segment_size blk_queue_write_cache sg_init_table
 * bindgen functions: dma_map_sg_attrs dma_unmap_sg_attrs
 * bindgen types: blk_mq_ops blk_mq_queue_data
 * bindgen opaque: blk_mq_tag_set request request_queue gendisk blk_mq_hw_ctx scatterlist device
 */
#include <linux/blk-mq.h>
#include <linux/blk-mq-pci.h>
#include <linux/pci.h>
#include <linux/blkdev.h>
#include <linux/dma-mapping.h>
#include <linux/scatterlist.h>

const blk_status_t RUST_CONST_BLK_STS_OK = BLK_STS_OK;
const blk_status_t RUST_CONST_BLK_STS_IOERR = BLK_STS_IOERR;
const blk_status_t RUST_CONST_BLK_STS_RESOURCE = BLK_STS_RESOURCE;
const blk_status_t RUST_CONST_BLK_STS_NOTSUPP = BLK_STS_NOTSUPP;
const blk_status_t RUST_CONST_BLK_STS_MEDIUM = BLK_STS_MEDIUM;
const blk_status_t RUST_CONST_BLK_STS_TARGET = BLK_STS_TARGET;
const blk_status_t RUST_CONST_BLK_STS_NEXUS = BLK_STS_NEXUS;
const blk_status_t RUST_CONST_BLK_STS_TIMEOUT = BLK_STS_TIMEOUT;
const blk_status_t RUST_CONST_BLK_STS_PROTECTION = BLK_STS_PROTECTION;
const blk_status_t RUST_CONST_BLK_STS_NOSPC = BLK_STS_NOSPC;
const unsigned int RUST_CONST_REQ_OP_READ = REQ_OP_READ;
const unsigned int RUST_CONST_REQ_OP_WRITE = REQ_OP_WRITE;
const unsigned int RUST_CONST_REQ_OP_FLUSH = REQ_OP_FLUSH;
const unsigned int RUST_CONST_BLK_MQ_F_SHOULD_MERGE = BLK_MQ_F_SHOULD_MERGE;
const int RUST_CONST_DMA_TO_DEVICE = DMA_TO_DEVICE;
const int RUST_CONST_DMA_FROM_DEVICE = DMA_FROM_DEVICE;
const size_t RUST_CONST_SCATTERLIST_SIZE = sizeof(struct scatterlist);
const int RUST_CONST_DISK_NAME_LEN = DISK_NAME_LEN;

void rust_helper_blk_mq_tag_set_init(struct blk_mq_tag_set *set, const struct blk_mq_ops *ops,
				     unsigned int nr_hw_queues, unsigned int depth,
				     unsigned int cmd_size, void *driver_data)
{
	memset(set, 0, sizeof(*set));
	set->ops = ops;
	set->nr_hw_queues = nr_hw_queues;
	set->queue_depth = depth;
	set->cmd_size = cmd_size;
	set->numa_node = NUMA_NO_NODE;
	set->flags = BLK_MQ_F_SHOULD_MERGE;
	set->driver_data = driver_data;
}

/*
 * The tag set's CPU -> hardware queue map: with `first_vector` >= 0 and a PCI `dev` whose
 * vectors first_vector.. exist, one per queue, each with a CPU mask (managed affinity), queue
 * i serves the CPUs of vector first_vector + i; otherwise blk-mq's default spreading. (6.1's
 * blk_mq_pci_map_queues() itself would WARN and put every CPU on queue 0 in the other cases.)
 */
void rust_helper_blk_mq_map_hw_queues(struct blk_mq_tag_set *set, struct device *dev,
				      int first_vector)
{
	struct blk_mq_queue_map *map = &set->map[HCTX_TYPE_DEFAULT];
	struct pci_dev *pdev;
	unsigned int i;

	if (first_vector < 0 || !dev_is_pci(dev))
		goto spread;
	pdev = to_pci_dev(dev);
	for (i = 0; i < map->nr_queues; i++) {
		/* pci_irq_get_affinity() WARNs on a vector that does not exist. */
		if (pci_irq_vector(pdev, first_vector + i) <= 0 ||
		    !pci_irq_get_affinity(pdev, first_vector + i))
			goto spread;
	}
	blk_mq_pci_map_queues(map, pdev, first_vector);
	return;
spread:
	blk_mq_map_queues(map);
}

void *rust_helper_blk_mq_tag_set_data(struct blk_mq_tag_set *set)
{
	return set->driver_data;
}

void *rust_helper_hctx_tag_set_data(struct blk_mq_hw_ctx *hctx)
{
	return hctx->queue->tag_set->driver_data;
}

void *rust_helper_rq_tag_set_data(struct request *rq)
{
	return rq->q->tag_set->driver_data;
}

void *rust_helper_blk_mq_rq_to_pdu(struct request *rq)
{
	return blk_mq_rq_to_pdu(rq);
}

unsigned int rust_helper_req_op(const struct request *rq)
{
	return req_op(rq);
}

u64 rust_helper_blk_rq_pos(const struct request *rq)
{
	return blk_rq_pos(rq);
}

unsigned int rust_helper_blk_rq_bytes(const struct request *rq)
{
	return blk_rq_bytes(rq);
}

int rust_helper_rq_tag(const struct request *rq)
{
	return rq->tag;
}

unsigned int rust_helper_rq_hw_queue(const struct request *rq)
{
	return rq->mq_hctx->queue_num;
}

int rust_helper_blk_rq_map_sg(struct request *rq, struct scatterlist *sgl)
{
	return blk_rq_map_sg(rq->q, rq, sgl);
}

struct request_queue *rust_helper_gendisk_queue(struct gendisk *disk)
{
	return disk->queue;
}

/* Gives the disk the (module-owned) block_device_operations. */
void rust_helper_gendisk_set_fops(struct gendisk *disk)
{
	static const struct block_device_operations fops = {
		.owner = THIS_MODULE,
	};

	disk->fops = &fops;
}

/* The disk's name buffer, DISK_NAME_LEN bytes (filled by the caller). */
char *rust_helper_gendisk_name(struct gendisk *disk)
{
	return disk->disk_name;
}

/* NULL and *err set on failure. */
struct gendisk *rust_helper_blk_mq_alloc_disk(struct blk_mq_tag_set *set, void *queuedata, int *err)
{
	struct gendisk *disk = blk_mq_alloc_disk(set, queuedata);

	if (IS_ERR(disk)) {
		*err = PTR_ERR(disk);
		return NULL;
	}
	return disk;
}

u64 rust_helper_sg_dma_address(struct scatterlist *sgl, int i)
{
	return sg_dma_address(&sgl[i]);
}

unsigned int rust_helper_sg_dma_len(struct scatterlist *sgl, int i)
{
	return sg_dma_len(&sgl[i]);
}

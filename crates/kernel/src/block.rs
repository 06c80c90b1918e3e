//! Block devices. [`mq`]: the multi-queue block layer (tag sets, requests, disks).

pub mod mq;

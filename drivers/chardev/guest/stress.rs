//! The concurrency test: 4 writer processes and 4 reader processes move 4 MiB through the
//! FIFO, shrunk to [`CAPACITY`] bytes so that writers often find it full and readers empty,
//! with pseudo-random chunk sizes.
//!
//! **Encoding.** Writer `w` (0..4) writes a stream of bytes `b_0, b_1, ...` where
//! `b_i = w << 6 | (i mod 64)`: the high 2 bits say who wrote the byte, the low 6 bits are a
//! per-writer counter. So from any byte a reader can tell its writer and position (mod 64).
//!
//! **What is checked.**
//! * No byte is lost or duplicated: the histogram of byte values over everything the readers
//!   got equals the histogram of everything the writers wrote (and the byte counts agree).
//! * FIFO order per writer is kept: the FIFO's content is an interleaving of the writers'
//!   streams, each in order, and one `read()` takes a contiguous piece of it, so within one
//!   chunk returned by `read()` the bytes of each writer must be *consecutive* positions of
//!   its stream: each counter is the previous one + 1 (mod 64). (Across two reads of the same
//!   reader other readers may have taken any number of that writer's bytes in between, so
//!   mod 64 nothing can be checked there.)

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::device::{Mode, Rustpipe};
use crate::harness::{ensure, ensure_eq, Context, Ctx, Failure, Process, TestResult};
use crate::procfs;
use crate::sys::{self, Errno, SharedCounter};

/// Writer processes.
pub const WRITERS: usize = 4;
/// Reader processes.
pub const READERS: usize = 4;
/// Bytes each writer writes (1 MiB).
pub const BYTES_PER_WRITER: u64 = 1 << 20;
/// Bytes moved in total (4 MiB).
pub const TOTAL_BYTES: u64 = BYTES_PER_WRITER * WRITERS as u64;
/// Largest chunk passed to one `read()`/`write()`.
pub const MAX_CHUNK: usize = 4096;
/// The FIFO's capacity during the test: the size of one chunk, so both sides block often.
pub const CAPACITY: u32 = 4096;

/// The byte writer `writer` writes at position `index` of its stream.
pub fn encode(writer: usize, index: u64) -> u8 {
    ((writer as u8) << 6) | (index % 64) as u8
}

/// `(writer, index mod 64)` of a byte.
pub fn decode(byte: u8) -> (usize, u8) {
    ((byte >> 6) as usize, byte & 63)
}

/// A small deterministic pseudo-random generator (xorshift64*), so runs are reproducible.
pub struct XorShift(u64);

impl XorShift {
    /// A generator seeded with `seed` (any value; 0 is remapped).
    pub fn new(seed: u64) -> XorShift {
        XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next pseudo-random number.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A chunk size in `1..=max`.
    pub fn chunk(&mut self, max: usize) -> usize {
        (self.next_u64() % max as u64) as usize + 1
    }
}

/// The histogram of byte values the writers produce in total.
pub fn expected_histogram(writers: usize, bytes_per_writer: u64) -> [u64; 256] {
    let mut histogram = [0u64; 256];
    for writer in 0..writers {
        for counter in 0..64u64 {
            // Positions i < bytes_per_writer with i mod 64 == counter.
            let count = bytes_per_writer / 64 + u64::from(counter < bytes_per_writer % 64);
            histogram[encode(writer, counter) as usize] += count;
        }
    }
    histogram
}

/// What one reader saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReaderTally {
    /// Count of each byte value read.
    pub histogram: [u64; 256],
    /// Bytes read.
    pub bytes: u64,
    /// Successful `read()` calls.
    pub reads: u64,
    /// Places where a writer's counter did not advance by exactly 1 within a chunk.
    pub order_violations: u64,
    /// A description of the first such place.
    pub first_violation: Option<String>,
}

impl Default for ReaderTally {
    fn default() -> ReaderTally {
        ReaderTally {
            histogram: [0; 256],
            bytes: 0,
            reads: 0,
            order_violations: 0,
            first_violation: None,
        }
    }
}

impl ReaderTally {
    /// Accounts for the bytes returned by one `read()`.
    pub fn record_chunk(&mut self, chunk: &[u8]) {
        let mut last: [Option<(u8, usize)>; 4] = [None; 4];
        for (offset, &byte) in chunk.iter().enumerate() {
            self.histogram[byte as usize] += 1;
            let (writer, counter) = decode(byte);
            if let Some((previous, previous_offset)) = last[writer] {
                if counter != (previous + 1) % 64 {
                    self.order_violations += 1;
                    if self.first_violation.is_none() {
                        self.first_violation = Some(format!(
                            "read #{} ({} bytes): writer {writer}'s counter went from {previous} \
                             (offset {previous_offset}) to {counter} (offset {offset}), expected {}",
                            self.reads + 1,
                            chunk.len(),
                            (previous + 1) % 64
                        ));
                    }
                }
            }
            last[writer] = Some((counter, offset));
        }
        self.bytes += chunk.len() as u64;
        self.reads += 1;
    }

    /// Serialises the tally (to send it through a pipe).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 * 8 + 24);
        for count in self.histogram {
            out.extend_from_slice(&count.to_le_bytes());
        }
        for value in [self.bytes, self.reads, self.order_violations] {
            out.extend_from_slice(&value.to_le_bytes());
        }
        if let Some(text) = &self.first_violation {
            out.extend_from_slice(text.as_bytes());
        }
        out
    }

    /// The inverse of [`ReaderTally::encode`].
    pub fn decode(bytes: &[u8]) -> Option<ReaderTally> {
        let words_len = (256 + 3) * 8;
        let words: Vec<u64> = bytes
            .get(..words_len)?
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("chunks of 8")))
            .collect();
        let text = &bytes[words_len..];
        Some(ReaderTally {
            histogram: words[..256].try_into().ok()?,
            bytes: words[256],
            reads: words[257],
            order_violations: words[258],
            first_violation: (!text.is_empty()).then(|| String::from_utf8_lossy(text).into_owned()),
        })
    }
}

/// Compares the histogram read with the one written; describes (up to 8) differences.
pub fn histogram_differences(written: &[u64; 256], read: &[u64; 256]) -> Vec<String> {
    let mut differences: Vec<String> = (0..256)
        .filter(|&value| written[value] != read[value])
        .map(|value| {
            let (writer, counter) = decode(value as u8);
            format!(
                "byte {value:#04x} (writer {writer}, counter {counter}): written {} times, read {} times",
                written[value], read[value]
            )
        })
        .collect();
    let total = differences.len();
    if total > 8 {
        differences.truncate(8);
        differences.push(format!("... and {} more differing byte values", total - 8));
    }
    differences
}

/// Writer `writer`: writes its whole stream in pseudo-random chunks (blocking writes, which
/// may be partial when the FIFO is nearly full: then the rest is written next).
fn writer_body(writer: usize) -> TestResult<Vec<u8>> {
    let pipe = Rustpipe::open(Mode::Write).context("open O_WRONLY")?;
    let mut rng = XorShift::new(writer as u64 + 1);
    let mut buf = vec![0u8; MAX_CHUNK];
    let mut position = 0u64;
    while position < BYTES_PER_WRITER {
        let len = (rng.chunk(MAX_CHUNK) as u64).min(BYTES_PER_WRITER - position) as usize;
        for (i, byte) in buf[..len].iter_mut().enumerate() {
            *byte = encode(writer, position + i as u64);
        }
        let mut done = 0;
        while done < len {
            let n = pipe.write(&buf[done..len]).context(format!(
                "write at stream position {}",
                position + done as u64
            ))?;
            ensure!(
                n > 0,
                "write() returned 0 at stream position {}",
                position + done as u64
            );
            done += n;
        }
        position += len as u64;
    }
    Ok(Vec::new())
}

/// A reader: reads pseudo-random chunk sizes until the test tells it (with SIGUSR1) that all
/// bytes have been read, then reports its tally.
fn reader_body(reader: usize, total_read: &SharedCounter) -> TestResult<Vec<u8>> {
    // Without SA_RESTART, so that SIGUSR1 interrupts a blocked read() with EINTR.
    sys::catch_signal(libc::SIGUSR1, false).context("sigaction(SIGUSR1)")?;
    let pipe = Rustpipe::open(Mode::Read).context("open O_RDONLY")?;
    let mut rng = XorShift::new(1000 + reader as u64);
    let mut buf = vec![0u8; MAX_CHUNK];
    let mut tally = ReaderTally::default();
    while sys::signals_caught() == 0 {
        let len = rng.chunk(MAX_CHUNK);
        match pipe.read(&mut buf[..len]) {
            Ok(0) => {
                return Err(Failure::new(
                    "read() returned 0, but the FIFO has no end-of-file",
                ))
            }
            Ok(n) => {
                tally.record_chunk(&buf[..n]);
                total_read.get().fetch_add(n as u64, Ordering::SeqCst);
            }
            Err(Errno::EINTR) => continue, // the stop signal; the loop condition sees it
            Err(e) => return Err(Failure::new(format!("read({len}) failed: {e}"))),
        }
    }
    Ok(tally.encode())
}

/// The test: see the module documentation.
pub fn concurrent_writers_and_readers(ctx: &Ctx) -> TestResult {
    let control = Rustpipe::open_nonblocking(Mode::ReadWrite).context("open control fd")?;
    control
        .set_capacity(CAPACITY)
        .context(format!("SET_CAPACITY({CAPACITY})"))?;
    let before = control.stats().context("GET_STATS before")?;
    let total_read = SharedCounter::new().context("mmap a shared counter")?;
    let started = Instant::now();

    // Readers first, so that they are blocked on the empty FIFO when the writers start.
    let mut readers = Vec::new();
    for r in 0..READERS {
        let total_read = &total_read;
        readers.push(Process::spawn(ctx, &format!("reader {r}"), move |_| {
            reader_body(r, total_read)
        })?);
    }
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        writers.push(Process::spawn(ctx, &format!("writer {w}"), move |_| {
            writer_body(w)
        })?);
    }
    // Let them work. Give up early if no byte is read for 10 s × scale (something is stuck),
    // and after 120 s × scale in any case.
    let mut failures: Vec<String> = Vec::new();
    let deadline = Instant::now() + ctx.scaled(Duration::from_secs(120));
    let stall_limit = ctx.scaled(Duration::from_secs(10));
    let (mut last_total, mut last_progress) = (0, Instant::now());
    loop {
        let total = total_read.get().load(Ordering::SeqCst);
        if total != last_total {
            (last_total, last_progress) = (total, Instant::now());
        }
        // Poll every writer (not short-circuiting), so finished ones are reaped promptly.
        let mut writers_done = true;
        for writer in writers.iter_mut() {
            writers_done &= writer.is_finished();
        }
        if writers_done && total >= TOTAL_BYTES {
            break;
        }
        if last_progress.elapsed() > stall_limit || Instant::now() > deadline {
            failures.push(format!(
                "{total} of {TOTAL_BYTES} bytes read, and nothing for {:.1} s; still running:",
                last_progress.elapsed().as_secs_f64()
            ));
            for process in writers.iter_mut().chain(readers.iter_mut()) {
                if !process.is_finished() {
                    failures.push(format!(
                        "  {}: {}",
                        process.label(),
                        procfs::describe(process.pid())
                    ));
                }
            }
            // Dropping the handles kills the processes.
            return Err(Failure::from_lines(failures));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    for writer in writers {
        if let Err(failure) = writer.join(ctx, Duration::from_secs(1)) {
            failures.extend(failure.lines().iter().cloned());
        }
    }

    // Stop the readers. One may take the signal just before it enters read() and then block,
    // so keep signalling until all have exited.
    let stop_deadline = Instant::now() + ctx.scaled(Duration::from_secs(5));
    while Instant::now() < stop_deadline {
        let mut running = 0;
        for reader in readers.iter_mut() {
            if !reader.is_finished() {
                running += 1;
                let _ = reader.signal(libc::SIGUSR1);
            }
        }
        if running == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let got = total_read.get().load(Ordering::SeqCst);
    if got != TOTAL_BYTES {
        failures.push(format!(
            "the readers got {got} bytes in total, expected {TOTAL_BYTES}"
        ));
    }
    let elapsed = started.elapsed();

    let mut combined = [0u64; 256];
    let mut reports = 0;
    for (r, reader) in readers.into_iter().enumerate() {
        let report = match reader.join(ctx, Duration::from_secs(1)) {
            Ok(report) => report,
            Err(failure) => {
                failures.extend(failure.lines().iter().cloned());
                continue;
            }
        };
        let Some(tally) = ReaderTally::decode(&report) else {
            failures.push(format!(
                "reader {r}: garbled report ({} bytes)",
                report.len()
            ));
            continue;
        };
        reports += 1;
        ctx.note(format!(
            "reader {r}: {} bytes in {} reads",
            tally.bytes, tally.reads
        ));
        for (sum, count) in combined.iter_mut().zip(tally.histogram) {
            *sum += count;
        }
        if tally.order_violations > 0 {
            failures.push(format!(
                "reader {r}: {} places where a writer's bytes were out of order within one read; first: {}",
                tally.order_violations,
                tally.first_violation.unwrap_or_default()
            ));
        }
    }
    if reports == READERS {
        failures.extend(histogram_differences(
            &expected_histogram(WRITERS, BYTES_PER_WRITER),
            &combined,
        ));
    } else {
        failures.push(format!(
            "histograms not compared: only {reports} of {READERS} readers reported"
        ));
    }
    if !failures.is_empty() {
        return Err(Failure::from_lines(failures));
    }
    ctx.note(format!(
        "{TOTAL_BYTES} bytes through the FIFO in {:.2} s ({:.1} MiB/s)",
        elapsed.as_secs_f64(),
        TOTAL_BYTES as f64 / (1 << 20) as f64 / elapsed.as_secs_f64()
    ));

    // The driver's own counters must agree with what the processes did.
    let after = control.stats().context("GET_STATS after")?;
    ensure_eq!(
        after.bytes_written - before.bytes_written,
        TOTAL_BYTES,
        "stats.bytes_written delta"
    );
    ensure_eq!(
        after.bytes_read - before.bytes_read,
        TOTAL_BYTES,
        "stats.bytes_read delta"
    );
    ensure_eq!(after.len, 0, "stats.len after everything was read");
    control
        .set_capacity(super::uapi::RUSTPIPE_DEFAULT_CAPACITY)
        .context("SET_CAPACITY(default) after the test")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_round_trips() {
        for writer in 0..4 {
            for index in [0u64, 1, 63, 64, 65, 1 << 20] {
                assert_eq!(decode(encode(writer, index)), (writer, (index % 64) as u8));
            }
        }
        assert_eq!(encode(3, 65), 0b11_000001);
    }

    #[test]
    fn chunks_are_in_range_and_reproducible() {
        let mut a = XorShift::new(7);
        let mut b = XorShift::new(7);
        let sizes: Vec<usize> = (0..10_000).map(|_| a.chunk(MAX_CHUNK)).collect();
        assert!(sizes.iter().all(|&s| (1..=MAX_CHUNK).contains(&s)));
        assert!(sizes.contains(&1) || sizes.iter().any(|&s| s < 16));
        assert!(sizes.iter().any(|&s| s > 4000));
        assert_eq!(
            sizes,
            (0..10_000).map(|_| b.chunk(MAX_CHUNK)).collect::<Vec<_>>()
        );
    }

    #[test]
    fn expected_histogram_counts_every_byte() {
        let h = expected_histogram(WRITERS, BYTES_PER_WRITER);
        assert_eq!(h.iter().sum::<u64>(), TOTAL_BYTES);
        assert!(h.iter().all(|&c| c == BYTES_PER_WRITER / 64));
        let odd = expected_histogram(2, 130); // 2 full rounds of 64, plus counters 0 and 1
        assert_eq!(odd[encode(1, 0) as usize], 3);
        assert_eq!(odd[encode(1, 1) as usize], 3);
        assert_eq!(odd[encode(1, 2) as usize], 2);
        assert_eq!(odd[encode(2, 0) as usize], 0);
        assert_eq!(odd.iter().sum::<u64>(), 260);
    }

    /// Simulates a correct FIFO: interleave the writers' streams, cut the result into chunks,
    /// deal them to readers. The tallies must add up with no order violation.
    #[test]
    fn a_correct_fifo_passes() {
        let (writers, per_writer) = (4usize, 5000u64);
        let mut positions = vec![0u64; writers];
        let mut rng = XorShift::new(42);
        let mut fifo = Vec::new();
        while positions.iter().any(|&p| p < per_writer) {
            let w = (rng.next_u64() % writers as u64) as usize;
            let n = (rng.chunk(100) as u64).min(per_writer - positions[w]);
            fifo.extend((0..n).map(|i| encode(w, positions[w] + i)));
            positions[w] += n;
        }
        let mut tallies = vec![ReaderTally::default(); 4];
        let mut rest = &fifo[..];
        while !rest.is_empty() {
            let n = rng.chunk(300).min(rest.len());
            tallies[(rng.next_u64() % 4) as usize].record_chunk(&rest[..n]);
            rest = &rest[n..];
        }
        let mut combined = [0u64; 256];
        for tally in &tallies {
            assert_eq!(tally.order_violations, 0, "{:?}", tally.first_violation);
            let decoded = ReaderTally::decode(&tally.encode()).unwrap();
            assert_eq!(&decoded, tally);
            for (sum, count) in combined.iter_mut().zip(decoded.histogram) {
                *sum += count;
            }
        }
        assert!(
            histogram_differences(&expected_histogram(writers, per_writer), &combined).is_empty()
        );
    }

    #[test]
    fn reordering_within_a_read_is_detected() {
        let mut tally = ReaderTally::default();
        tally.record_chunk(&[encode(1, 5), encode(0, 9), encode(1, 7), encode(1, 6)]);
        assert_eq!(tally.order_violations, 2);
        assert_eq!(
            tally.first_violation.as_deref(),
            Some("read #1 (4 bytes): writer 1's counter went from 5 (offset 0) to 7 (offset 2), expected 6")
        );
        // Wrapping from 63 to 0 is in order.
        let mut wrap = ReaderTally::default();
        wrap.record_chunk(&[encode(2, 63), encode(2, 64)]);
        assert_eq!(wrap.order_violations, 0);
        let round_trip = ReaderTally::decode(&tally.encode()).unwrap();
        assert_eq!(round_trip, tally);
    }

    #[test]
    fn lost_and_duplicated_bytes_are_detected() {
        let written = expected_histogram(1, 128);
        let mut read = written;
        read[encode(0, 3) as usize] -= 1;
        read[encode(0, 4) as usize] += 1;
        assert_eq!(
            histogram_differences(&written, &read),
            [
                "byte 0x03 (writer 0, counter 3): written 2 times, read 1 times",
                "byte 0x04 (writer 0, counter 4): written 2 times, read 3 times"
            ]
        );
    }
}

//! Counters the server exports on `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds (milliseconds, inclusive) of the delivery latency histogram's buckets; the
/// `+Inf` bucket is [`Metrics::latency_count`].
pub const LATENCY_BUCKETS_MS: [u64; 12] = [
    10, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 300_000,
];

/// Counters of all destinations together, updated as leases are settled. All monotonic
/// (Prometheus counters); read them with `load(Ordering::Relaxed)`.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Instances delivered (stored, or already present at the destination) and deleted from the
    /// spool.
    pub delivered: AtomicU64,
    /// Instances moved to the dead-letter folder (refused for good, corrupt, or out of retry
    /// budget).
    pub dead_lettered: AtomicU64,
    /// Instances handed back to the spool to be sent again later (one per instance per failed
    /// attempt).
    pub retries: AtomicU64,
    /// Bytes of the instances counted in `delivered`.
    pub delivered_bytes: AtomicU64,
    /// Sum of the delivery latencies (from `SpoolMeta::received_at_ms` to delivery) of the
    /// instances counted in `latency_count`, in milliseconds.
    pub latency_ms_sum: AtomicU64,
    /// Delivered instances whose latency was observed.
    pub latency_count: AtomicU64,
    /// Cumulative histogram: `latency_buckets[i]` counts the delivered instances whose latency
    /// was at most `LATENCY_BUCKETS_MS[i]` ms (Prometheus `le` buckets).
    pub latency_buckets: [AtomicU64; LATENCY_BUCKETS_MS.len()],
}

impl Metrics {
    /// Records one delivered instance of `bytes` bytes, `latency_ms` after it was received.
    pub(crate) fn observe_delivery(&self, bytes: u64, latency_ms: u64) {
        self.delivered.fetch_add(1, Ordering::Relaxed);
        self.delivered_bytes.fetch_add(bytes, Ordering::Relaxed);
        self.latency_ms_sum.fetch_add(latency_ms, Ordering::Relaxed);
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        for (bucket, le) in self.latency_buckets.iter().zip(LATENCY_BUCKETS_MS) {
            if latency_ms <= le {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative() {
        let m = Metrics::default();
        m.observe_delivery(100, 7);
        m.observe_delivery(200, 300);
        m.observe_delivery(300, 1_000_000);
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        assert_eq!(get(&m.delivered), 3);
        assert_eq!(get(&m.delivered_bytes), 600);
        assert_eq!(get(&m.latency_ms_sum), 1_000_307);
        assert_eq!(get(&m.latency_count), 3);
        let buckets: Vec<u64> = m.latency_buckets.iter().map(get).collect();
        assert_eq!(buckets, [1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2]);
    }
}

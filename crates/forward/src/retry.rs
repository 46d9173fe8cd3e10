//! Exponential backoff with full jitter.

use std::time::Duration;

/// The longest `Retry-After` the forwarder honours; a destination asking for more is retried
/// after this long (a typo in a proxy's config must not stall a destination for days).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// How a destination's retryable failures are retried.
///
/// After the `n`-th failed attempt of an instance (1-based) the destination waits a random
/// duration between 0 and `min(max, initial · 2^(n-1))` ("full jitter"), or the destination's
/// `Retry-After` when that is longer (up to [`MAX_RETRY_AFTER`]). An instance whose
/// `max_attempts`-th attempt fails is dead-lettered with the reason "retry budget exhausted".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The ceiling of the first wait.
    pub initial: Duration,
    /// The largest ceiling.
    pub max: Duration,
    /// Attempts (the first delivery included) before an instance is dead-lettered. 0 counts as 1.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    /// 1 s, 5 min, 20 attempts.
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(300),
            max_attempts: 20,
        }
    }
}

impl RetryPolicy {
    /// The ceiling of the wait after the `attempt`-th failed attempt (1-based):
    /// `min(max, initial · 2^(attempt-1))`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        match 1u32.checked_shl(attempt.saturating_sub(1)) {
            Some(factor) => self.initial.saturating_mul(factor).min(self.max),
            None => self.max,
        }
    }

    /// The wait after the `attempt`-th failed attempt: `ceiling(attempt) · unit` (`unit` in
    /// `[0, 1]`, the jitter), or `retry_after` when that is longer (capped at
    /// [`MAX_RETRY_AFTER`]).
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>, unit: f64) -> Duration {
        let unit = if unit.is_finite() {
            unit.clamp(0.0, 1.0)
        } else {
            1.0
        };
        let jittered = self.ceiling(attempt).mul_f64(unit);
        match retry_after {
            Some(asked) => jittered.max(asked.min(MAX_RETRY_AFTER)),
            None => jittered,
        }
    }

    /// Whether an instance whose `attempt`-th attempt just failed is out of budget.
    pub fn exhausted(&self, attempt: u32) -> bool {
        attempt >= self.max_attempts.max(1)
    }
}

/// A uniformly distributed number in `[0, 1)` from the operating system (jitter needs no
/// cryptographic quality, but this needs no extra state either). `1.0` (no jitter: the
/// ceiling) if the OS cannot provide one.
pub(crate) fn jitter_unit() -> f64 {
    match getrandom::u64() {
        Ok(r) => (r >> 11) as f64 / (1u64 << 53) as f64,
        Err(_) => 1.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn ceilings_double_up_to_the_maximum() {
        let p = RetryPolicy::default();
        let ceilings: Vec<u64> = (1..=11).map(|n| p.ceiling(n).as_secs()).collect();
        assert_eq!(ceilings, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(p.ceiling(0), S(1));
        assert_eq!(p.ceiling(u32::MAX), S(300), "no overflow");
        let huge = RetryPolicy {
            max: Duration::MAX,
            ..p
        };
        assert_eq!(huge.ceiling(200), Duration::MAX, "saturates");
    }

    #[test]
    fn full_jitter_spans_zero_to_the_ceiling() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(4, None, 0.0), Duration::ZERO);
        assert_eq!(p.delay(4, None, 0.5), S(4));
        assert_eq!(p.delay(4, None, 1.0), S(8));
        assert_eq!(p.delay(4, None, f64::NAN), S(8));
        for _ in 0..1000 {
            let u = jitter_unit();
            assert!((0.0..1.0).contains(&u), "{u}");
            assert!(p.delay(3, None, u) <= S(4));
        }
    }

    #[test]
    fn retry_after_is_honoured_when_longer() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(1, Some(S(30)), 1.0), S(30));
        assert_eq!(
            p.delay(8, Some(S(30)), 1.0),
            S(128),
            "the backoff is longer"
        );
        assert_eq!(p.delay(1, Some(S(86_400)), 0.0), MAX_RETRY_AFTER);
    }

    #[test]
    fn the_budget_counts_every_attempt() {
        let p = RetryPolicy {
            max_attempts: 3,
            ..RetryPolicy::default()
        };
        assert!(!p.exhausted(1));
        assert!(!p.exhausted(2));
        assert!(p.exhausted(3));
        let once = RetryPolicy {
            max_attempts: 0,
            ..p
        };
        assert!(once.exhausted(1), "0 counts as 1");
    }
}

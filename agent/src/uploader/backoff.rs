//! Exponential backoff with full jitter: after the n-th consecutive failure the uploader
//! sleeps a uniformly random time in `[0, min(cap, base * 2^(n-1))]`, so a fleet that lost its
//! hub at the same moment does not reconnect in lockstep.

use std::time::Duration;

use rand::Rng;

#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    base_ms: u64,
    cap_ms: u64,
}

impl Backoff {
    pub fn new(base_ms: u64, cap_ms: u64) -> Self {
        Self {
            base_ms,
            cap_ms: cap_ms.max(base_ms),
        }
    }

    /// `min(cap, base * 2^exponent)`, without overflow for any exponent.
    pub fn ceiling_ms(&self, exponent: u32) -> u64 {
        let factor = 1u64.checked_shl(exponent).unwrap_or(u64::MAX);
        self.base_ms.saturating_mul(factor).min(self.cap_ms)
    }

    /// The sleep after `failures` consecutive failures (`failures >= 1`).
    pub fn delay(&self, failures: u32, rng: &mut impl Rng) -> Duration {
        let ceiling = self.ceiling_ms(failures.saturating_sub(1));
        Duration::from_millis(rng.random_range(0..=ceiling))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceiling_doubles_then_caps() {
        let b = Backoff::new(1000, 300_000);
        assert_eq!(b.ceiling_ms(0), 1000);
        assert_eq!(b.ceiling_ms(1), 2000);
        assert_eq!(b.ceiling_ms(8), 256_000);
        assert_eq!(b.ceiling_ms(9), 300_000);
        assert_eq!(b.ceiling_ms(63), 300_000);
        assert_eq!(b.ceiling_ms(64), 300_000);
        assert_eq!(b.ceiling_ms(u32::MAX), 300_000);
    }

    #[test]
    fn full_jitter_stays_within_bounds_and_spreads() {
        let b = Backoff::new(100, 5_000);
        let mut rng = rand::rng();
        for failures in 1..=40u32 {
            let bound = (100u64 << (failures - 1).min(40)).min(5_000);
            let samples: Vec<u64> = (0..200)
                .map(|_| b.delay(failures, &mut rng).as_millis() as u64)
                .collect();
            assert!(samples.iter().all(|&s| s <= bound), "failures={failures}");
            // Full jitter: draws cover the low and the high part of the range, not just the top.
            assert!(
                samples.iter().any(|&s| s < bound / 2),
                "failures={failures}"
            );
            assert!(
                samples.iter().any(|&s| s > bound / 2),
                "failures={failures}"
            );
        }
        assert!(b.delay(0, &mut rng) <= Duration::from_millis(100));
    }
}

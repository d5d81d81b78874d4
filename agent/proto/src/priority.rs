//! Stream priorities decide what the outbox may evict when it is full.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Ordered from least to most important: `BestEffort < Normal < Critical`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// Evicted first when the store is full.
    BestEffort,
    /// Evicted when no best-effort record is left to evict.
    Normal,
    /// Never evicted; new writes are refused when the store is full.
    Critical,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown priority {0:?} (allowed: critical, normal, best_effort)")]
pub struct UnknownPriority(pub String);

impl Priority {
    pub const ALL: [Priority; 3] = [Priority::Critical, Priority::Normal, Priority::BestEffort];

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Critical => "critical",
            Priority::Normal => "normal",
            Priority::BestEffort => "best_effort",
        }
    }

    /// A stable small integer for storage: higher is more important.
    pub fn rank(self) -> i64 {
        match self {
            Priority::BestEffort => 0,
            Priority::Normal => 1,
            Priority::Critical => 2,
        }
    }

    pub fn from_rank(rank: i64) -> Option<Self> {
        match rank {
            0 => Some(Priority::BestEffort),
            1 => Some(Priority::Normal),
            2 => Some(Priority::Critical),
            _ => None,
        }
    }

    /// Whether records of this priority may be evicted to make room.
    pub fn evictable(self) -> bool {
        self != Priority::Critical
    }
}

impl FromStr for Priority {
    type Err = UnknownPriority;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "critical" => Ok(Priority::Critical),
            "normal" => Ok(Priority::Normal),
            "best_effort" | "best-effort" => Ok(Priority::BestEffort),
            other => Err(UnknownPriority(other.chars().take(40).collect())),
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_and_round_trip() {
        assert!(Priority::BestEffort < Priority::Normal && Priority::Normal < Priority::Critical);
        for p in Priority::ALL {
            assert_eq!(p.as_str().parse::<Priority>().unwrap(), p);
            assert_eq!(Priority::from_rank(p.rank()), Some(p));
        }
        assert!("urgent".parse::<Priority>().is_err());
        assert!(!Priority::Critical.evictable());
    }
}

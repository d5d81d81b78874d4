//! Whether a new record fits in the bounded store, and what may be evicted to make room.
//!
//! Pure arithmetic over the in-memory byte counts per priority, so admission costs O(1) and
//! never scans the database.

use outpost_proto::Priority;

/// Fixed per-record overhead added to the payload, id and stream lengths: it stands for the
/// row's other columns and index entries, so `max_bytes` tracks the file size roughly.
pub const RECORD_OVERHEAD: u64 = 64;

/// The accounted size of a record.
pub fn record_size(payload_len: usize, id_len: usize, stream_len: usize) -> u64 {
    (payload_len as u64)
        .saturating_add(id_len as u64)
        .saturating_add(stream_len as u64)
        .saturating_add(RECORD_OVERHEAD)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Fits without evicting anything.
    Fits,
    /// Fits once at least `need` bytes of evictable records (see [`eviction_order`]) are gone.
    Evict { need: u64 },
    /// Would not fit even after evicting every candidate: nothing may be evicted.
    Full { need: u64 },
    /// Larger than the whole store.
    TooLarge,
}

/// Decides admission of `size` bytes at `priority`, given bytes used per priority rank.
pub(crate) fn admit(used: &[u64; 3], max_bytes: u64, size: u64, priority: Priority) -> Admission {
    if size > max_bytes {
        return Admission::TooLarge;
    }
    let after = used.iter().fold(size, |sum, u| sum.saturating_add(*u));
    if after <= max_bytes {
        return Admission::Fits;
    }
    let need = after - max_bytes;
    let evictable: u64 = eviction_order(priority).map(|p| used[rank_index(p)]).sum();
    if evictable >= need {
        Admission::Evict { need }
    } else {
        Admission::Full { need }
    }
}

/// Priorities a write of `priority` may evict, in the order to evict them: lowest first,
/// only evictable ones (never critical), and never anything more important than the write.
pub(crate) fn eviction_order(priority: Priority) -> impl Iterator<Item = Priority> {
    [Priority::BestEffort, Priority::Normal, Priority::Critical]
        .into_iter()
        .filter(move |p| p.evictable() && *p <= priority)
}

/// Index of a priority in per-priority arrays (`Priority::rank` is 0..=2).
pub(crate) fn rank_index(priority: Priority) -> usize {
    match priority {
        Priority::BestEffort => 0,
        Priority::Normal => 1,
        Priority::Critical => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Priority::*;

    #[test]
    fn fits_when_room_is_left() {
        assert_eq!(admit(&[10, 10, 10], 100, 70, Normal), Admission::Fits);
        assert_eq!(admit(&[0, 0, 0], 100, 100, Critical), Admission::Fits);
    }

    #[test]
    fn evicts_only_lower_or_equal_evictable_priorities() {
        // 90 used, 20 more needs 10 freed.
        assert_eq!(
            admit(&[5, 5, 80], 100, 20, BestEffort),
            Admission::Full { need: 10 }
        );
        assert_eq!(
            admit(&[5, 5, 80], 100, 20, Normal),
            Admission::Evict { need: 10 }
        );
        assert_eq!(
            admit(&[5, 5, 80], 100, 20, Critical),
            Admission::Evict { need: 10 }
        );
        // Critical bytes are never candidates.
        assert_eq!(
            admit(&[0, 0, 90], 100, 20, Critical),
            Admission::Full { need: 10 }
        );
        assert_eq!(
            admit(&[10, 0, 80], 100, 20, BestEffort),
            Admission::Evict { need: 10 }
        );
    }

    #[test]
    fn too_large_and_overfull_store() {
        assert_eq!(admit(&[0, 0, 0], 100, 101, Critical), Admission::TooLarge);
        // The limit was lowered below what is stored: the write must free the excess too.
        assert_eq!(
            admit(&[150, 0, 0], 100, 10, Normal),
            Admission::Evict { need: 60 }
        );
    }

    #[test]
    fn eviction_order_is_lowest_first_and_never_critical() {
        assert_eq!(
            eviction_order(BestEffort).collect::<Vec<_>>(),
            vec![BestEffort]
        );
        assert_eq!(
            eviction_order(Normal).collect::<Vec<_>>(),
            vec![BestEffort, Normal]
        );
        assert_eq!(
            eviction_order(Critical).collect::<Vec<_>>(),
            vec![BestEffort, Normal]
        );
        for p in Priority::ALL {
            assert_eq!(rank_index(p) as i64, p.rank());
        }
        assert_eq!(record_size(1000, 36, 4), 1104);
    }
}

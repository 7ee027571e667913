//! Shards: a backup of one large target split into parts handled in parallel, then joined.
//! Namespaces are spread over the parts by a stable hash of their name (the same on every
//! machine and every release: it decides where each delivery of a shard looks), and
//! cluster-scoped objects go with part 0.

use serde::{Deserialize, Serialize};

/// One part of a sharded backup: `index` of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Shard {
    /// Which part, from 0.
    pub index: u32,
    /// How many parts there are (at least 1).
    pub count: u32,
}

impl Shard {
    /// Every part of a backup split in `count` (at least one part).
    pub fn all(count: u32) -> impl Iterator<Item = Shard> {
        let count = count.max(1);
        (0..count).map(move |index| Shard { index, count })
    }

    /// Whether the namespace `name` belongs to this part.
    ///
    /// ```
    /// use lifeboat_shared::domain::shards::Shard;
    /// let owners = Shard::all(3).filter(|s| s.holds_namespace("shop")).count();
    /// assert_eq!(owners, 1, "each namespace belongs to exactly one part");
    /// ```
    pub fn holds_namespace(&self, name: &str) -> bool {
        namespace_shard(name, self.count) == self.index
    }

    /// Whether cluster-scoped objects listed as such (not found through a namespace) belong
    /// to this part.
    pub fn holds_cluster_scoped(&self) -> bool {
        self.index == 0
    }
}

/// The part (of `count`) a namespace belongs to: FNV-1a of its name, modulo `count`.
pub fn namespace_shard(name: &str, count: u32) -> u32 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let hash = name.bytes().fold(OFFSET, |h, b| (h ^ u64::from(b)).wrapping_mul(PRIME));
    u32::try_from(hash % u64::from(count.max(1))).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_stable_across_builds() {
        // Pinned values: changing the hash would move namespaces between parts mid-backup
        // when a release rolls out during one.
        assert_eq!(namespace_shard("", 1000), (0xcbf2_9ce4_8422_2325u64 % 1000) as u32);
        assert_eq!(namespace_shard("a", u32::MAX), (0xaf63_dc4c_8601_ec8cu64 % u64::from(u32::MAX)) as u32);
    }

    #[test]
    fn namespaces_spread_over_every_part_and_each_has_one_owner() {
        let names: Vec<String> = (0..60).map(|i| format!("team-{i}")).collect();
        for shard in Shard::all(3) {
            assert!(names.iter().any(|n| shard.holds_namespace(n)), "part {} gets no namespace", shard.index);
        }
        for n in &names {
            assert_eq!(Shard::all(3).filter(|s| s.holds_namespace(n)).count(), 1, "{n}");
        }
        assert!(Shard::all(1).all(|s| s.holds_namespace("anything") && s.holds_cluster_scoped()));
    }
}

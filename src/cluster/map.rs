//! The slot map: a pure function of the live member set. The 16,384 slots are split into
//! contiguous, near-equal ranges (sizes differ by at most one) over the live nodes ordered by
//! node id, so every node that sees the same members computes the same map, with no election
//! and no stored assignment.

use super::slot::SLOTS;

/// Which member owns which slots: member `i` of the sorted live set owns `ranges[i]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotMap {
    /// Inclusive `(first, last)` slot of each member, in member order. Empty for no members.
    ranges: Vec<(u16, u16)>,
}

impl SlotMap {
    /// The map for `members` live nodes (already ordered by node id).
    pub fn new(members: usize) -> Self {
        let n = members.min(SLOTS as usize);
        let total = SLOTS as usize;
        let ranges = (0..n)
            .map(|i| ((i * total / n) as u16, ((i + 1) * total / n - 1) as u16))
            .collect();
        SlotMap { ranges }
    }

    /// The member (index into the sorted live set) that owns `slot`.
    pub fn owner(&self, slot: u16) -> Option<usize> {
        if self.ranges.is_empty() || slot >= SLOTS {
            return None;
        }
        // Ranges are contiguous and ascending: the owner is the last range starting at or
        // before `slot`.
        Some(self.ranges.partition_point(|&(first, _)| first <= slot) - 1)
    }

    /// The inclusive range member `i` owns.
    pub fn range(&self, i: usize) -> Option<(u16, u16)> {
        self.ranges.get(i).copied()
    }

    /// Every `(first, last, member)` in slot order.
    pub fn ranges(&self) -> impl Iterator<Item = (u16, u16, usize)> + '_ {
        self.ranges.iter().enumerate().map(|(i, &(f, l))| (f, l, i))
    }

    pub fn members(&self) -> usize {
        self.ranges.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn one_member_owns_every_slot() {
        let m = SlotMap::new(1);
        assert_eq!(m.range(0), Some((0, 16383)));
        assert_eq!(m.owner(0), Some(0));
        assert_eq!(m.owner(16383), Some(0));
        assert_eq!(m.owner(16384), None);
    }

    #[test]
    fn three_members_split_near_equally() {
        let m = SlotMap::new(3);
        assert_eq!(m.range(0), Some((0, 5460)));
        assert_eq!(m.range(1), Some((5461, 10921)));
        assert_eq!(m.range(2), Some((10922, 16383)));
        assert_eq!(m.owner(5460), Some(0));
        assert_eq!(m.owner(5461), Some(1));
        assert_eq!(m.owner(10922), Some(2));
    }

    #[test]
    fn no_members_own_nothing() {
        let m = SlotMap::new(0);
        assert_eq!(m.owner(0), None);
        assert_eq!(m.members(), 0);
    }

    proptest! {
        /// Any live set gives every slot exactly one owner, in contiguous near-equal ranges.
        #[test]
        fn every_slot_has_exactly_one_owner(n in 1usize..=300) {
            let m = SlotMap::new(n);
            let mut owners = vec![0u32; SLOTS as usize];
            for (first, last, _) in m.ranges() {
                for s in first..=last {
                    owners[s as usize] += 1;
                }
            }
            prop_assert!(owners.iter().all(|&c| c == 1));
            let sizes: Vec<usize> = m.ranges().map(|(f, l, _)| (l - f) as usize + 1).collect();
            let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
            prop_assert!(max - min <= 1);
            for s in (0..SLOTS).step_by(97) {
                let o = m.owner(s).unwrap();
                let (f, l) = m.range(o).unwrap();
                prop_assert!(f <= s && s <= l);
            }
        }
    }
}

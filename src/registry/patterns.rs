//! Pattern index: distinct patterns and their values. Placeholder linear scan; replaced by the
//! indexed version.

use std::collections::HashMap;

use bytes::Bytes;

use super::glob::stringmatch;

pub struct PatternIndex<T> {
    map: HashMap<Bytes, T>,
}

impl<T> Default for PatternIndex<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> PatternIndex<T> {
    pub fn new() -> Self {
        PatternIndex {
            map: HashMap::new(),
        }
    }
    pub fn len(&self) -> usize {
        self.map.len()
    }
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
    pub fn get(&self, pattern: &[u8]) -> Option<&T> {
        self.map.get(pattern)
    }
    pub fn get_mut(&mut self, pattern: &[u8]) -> Option<&mut T> {
        self.map.get_mut(pattern)
    }
    pub fn get_or_insert_with(&mut self, pattern: Bytes, f: impl FnOnce() -> T) -> &mut T {
        self.map.entry(pattern).or_insert_with(f)
    }
    pub fn remove(&mut self, pattern: &[u8]) -> Option<T> {
        self.map.remove(pattern)
    }
    pub fn for_each_match(&self, channel: &[u8], mut f: impl FnMut(&Bytes, &T)) {
        for (p, v) in &self.map {
            if stringmatch(p, channel, false) {
                f(p, v);
            }
        }
    }
    pub fn iter(&self) -> impl Iterator<Item = (&Bytes, &T)> {
        self.map.iter()
    }
}

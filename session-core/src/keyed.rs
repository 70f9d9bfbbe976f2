//! `Keyed`: the map behind a session's data and its change record.
//!
//! A session holds a handful of keys, so a vector sorted by key serves it better than a
//! `BTreeMap`: it allocates only what it holds (a tree allocates a whole leaf for one
//! entry, past the allocator's per-thread cache), a binary search of a few entries beats
//! a node walk, and it keeps the key order the stored JSON has. `docs/performance.md` has
//! the measurement.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};

/// String keys to values, sorted by key, each key at most once.
#[derive(Clone, PartialEq)]
pub(crate) struct Keyed<V> {
    entries: Vec<(String, V)>,
}

impl<V> Keyed<V> {
    pub(crate) const fn new() -> Self {
        Self {
            entries: Vec::new(),
        }
    }

    fn position(&self, key: &str) -> Result<usize, usize> {
        self.entries
            .binary_search_by(|(entry, _)| entry.as_str().cmp(key))
    }

    pub(crate) fn get(&self, key: &str) -> Option<&V> {
        let index = self.position(key).ok()?;
        Some(&self.entries[index].1)
    }

    pub(crate) fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        let index = self.position(key).ok()?;
        Some(&mut self.entries[index].1)
    }

    pub(crate) fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_ok()
    }

    /// Sets `key` to `value`; returns the value it replaced.
    pub(crate) fn insert(&mut self, key: String, value: V) -> Option<V> {
        match self.position(&key) {
            Ok(index) => Some(std::mem::replace(&mut self.entries[index].1, value)),
            Err(index) => {
                self.entries.insert(index, (key, value));
                None
            }
        }
    }

    pub(crate) fn remove(&mut self, key: &str) -> Option<V> {
        let index = self.position(key).ok()?;
        Some(self.entries.remove(index).1)
    }

    /// Keeps the entries for which `keep` answers `true`.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&str, &V) -> bool) {
        self.entries.retain(|(key, value)| keep(key, value));
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &V)> {
        self.entries
            .iter()
            .map(|(key, value)| (key.as_str(), value))
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(key, _)| key.as_str())
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl<V> Default for Keyed<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V: fmt::Debug> fmt::Debug for Keyed<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K: Into<String>, V> FromIterator<(K, V)> for Keyed<V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(entries: I) -> Self {
        let entries = entries
            .into_iter()
            .map(|(key, value)| (key.into(), value))
            .collect();
        Self::from_unsorted(entries)
    }
}

impl<V> Keyed<V> {
    /// Sorts `entries` by key; of repeated keys the last one wins, as in a map that
    /// inserted them in order.
    fn from_unsorted(mut entries: Vec<(String, V)>) -> Self {
        // What this crate stores is sorted already: checking is cheaper than sorting.
        if !entries.is_sorted_by(|(a, _), (b, _)| a < b) {
            // Stable, so repeated keys stay in input order; then each later one's value
            // replaces the earlier kept one.
            entries.sort_by(|(a, _), (b, _)| a.cmp(b));
            entries.dedup_by(|later, kept| {
                let repeated = later.0 == kept.0;
                if repeated {
                    std::mem::swap(&mut later.1, &mut kept.1);
                }
                repeated
            });
        }
        Self { entries }
    }
}

impl<V: Serialize> Serialize for Keyed<V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (key, value) in self.iter() {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Keyed<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Entries<V>(PhantomData<V>);

        impl<'de, V: Deserialize<'de>> Visitor<'de> for Entries<V> {
            type Value = Keyed<V>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map with string keys")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                // The hint comes from the input: bounded, so a forged length cannot make
                // a large allocation before any entry has been read.
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(4).min(64));
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(Keyed::from_unsorted(entries))
            }
        }

        deserializer.deserialize_map(Entries(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_stay_sorted_and_unique() {
        let mut map = Keyed::new();
        for key in ["b", "a", "c", "a"] {
            map.insert(key.to_owned(), key.len());
        }
        assert_eq!(map.keys().collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(map.insert("b".to_owned(), 9), Some(1));
        assert_eq!(map.get("b"), Some(&9));
        assert_eq!(map.remove("a"), Some(1));
        assert_eq!(map.remove("a"), None);
        assert!(!map.contains_key("a"));
        assert_eq!(map.len(), 2);
    }

    #[test]
    fn decoding_sorts_and_the_last_of_repeated_keys_wins() {
        let map: Keyed<u32> = serde_json::from_str(r#"{"b":1,"a":2,"b":3,"c":4,"a":5}"#).unwrap();
        assert_eq!(
            map.iter().map(|(k, v)| (k, *v)).collect::<Vec<_>>(),
            [("a", 5), ("b", 3), ("c", 4)]
        );
        assert_eq!(
            serde_json::to_string(&map).unwrap(),
            r#"{"a":5,"b":3,"c":4}"#
        );
    }

    #[test]
    fn encodes_as_a_btree_map_does() {
        let pairs = [("zeta", 1), ("alpha", 2), ("ключ", 3), ("Alpha", 4)];
        let ours: Keyed<i32> = pairs.into_iter().collect();
        let reference: std::collections::BTreeMap<&str, i32> = pairs.into_iter().collect();
        assert_eq!(
            serde_json::to_string(&ours).unwrap(),
            serde_json::to_string(&reference).unwrap()
        );
        assert_eq!(
            rmp_serde::to_vec(&ours).unwrap(),
            rmp_serde::to_vec(&reference).unwrap()
        );
    }

    proptest::proptest! {
        #[test]
        fn behaves_as_a_btree_map(
            operations in proptest::collection::vec((proptest::bool::ANY, "[a-d]{0,2}", 0u8..9), 0..40)
        ) {
            let mut ours = Keyed::new();
            let mut reference = std::collections::BTreeMap::new();
            for (insert, key, value) in operations {
                if insert {
                    proptest::prop_assert_eq!(
                        ours.insert(key.clone(), value),
                        reference.insert(key, value)
                    );
                } else {
                    proptest::prop_assert_eq!(ours.remove(&key), reference.remove(&key));
                }
            }
            let expected: Vec<_> = reference.iter().map(|(k, v)| (k.as_str(), v)).collect();
            proptest::prop_assert_eq!(ours.iter().collect::<Vec<_>>(), expected);
        }
    }
}

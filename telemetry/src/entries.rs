//! The named entries of a record being built (its signals, its attributes), written into a
//! vector that may still hold the entries of a recycled record (see [`crate::spares`]): the
//! first `len` entries are this record's, the rest are stale and get overwritten in place.

use compact_str::CompactString;

use crate::record::Signal;
use crate::text::same_text;

/// An entry with a name and a value: a signal or an attribute.
pub(crate) trait NamedEntry {
    /// What the entry holds besides its name.
    type Value;

    /// A new entry.
    fn new(name: &str, value: Self::Value) -> Self;

    /// The entry's name.
    fn name(&self) -> &CompactString;

    /// Renames the entry.
    fn rename(&mut self, name: &str);

    /// Replaces the entry's value.
    fn set(&mut self, value: Self::Value);
}

impl NamedEntry for Signal {
    type Value = f64;

    #[inline]
    fn new(name: &str, value: f64) -> Self {
        Signal::new(name, value)
    }

    #[inline]
    fn name(&self) -> &CompactString {
        &self.name
    }

    #[inline]
    fn rename(&mut self, name: &str) {
        self.name = CompactString::from(name);
    }

    #[inline]
    fn set(&mut self, value: f64) {
        self.value = value;
    }
}

impl NamedEntry for (CompactString, CompactString) {
    type Value = CompactString;

    #[inline]
    fn new(name: &str, value: CompactString) -> Self {
        (CompactString::from(name), value)
    }

    #[inline]
    fn name(&self) -> &CompactString {
        &self.0
    }

    #[inline]
    fn rename(&mut self, name: &str) {
        self.0 = CompactString::from(name);
    }

    #[inline]
    fn set(&mut self, value: CompactString) {
        self.1 = value;
    }
}

/// This record's entries, in a vector whose tail may be left over from a recycled record.
pub(crate) struct Entries<T> {
    vec: Vec<T>,
    len: usize,
}

impl<T: NamedEntry> Entries<T> {
    /// Entries written from the start of `vec`, whatever it holds.
    #[inline]
    pub(crate) fn over(vec: Vec<T>) -> Self {
        Self { vec, len: 0 }
    }

    /// True when no entry was written.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// This record's entry named `name`, if written.
    #[inline]
    pub(crate) fn find_mut(&mut self, name: &str) -> Option<&mut T> {
        self.vec[..self.len]
            .iter_mut()
            .find(|entry| same_text(entry.name(), name))
    }

    /// Appends an entry (the caller made sure `name` is new). A stale entry of the same name in
    /// its place keeps its name: a recycled record of the same model often had it right there.
    #[inline]
    pub(crate) fn append(&mut self, name: &str, value: T::Value) {
        let index = self.len;
        self.len += 1;
        match self.vec.get_mut(index) {
            Some(entry) => {
                if !same_text(entry.name(), name) {
                    entry.rename(name);
                }
                entry.set(value);
            }
            None => self.vec.push(T::new(name, value)),
        }
    }

    /// Makes room for `count` more entries.
    #[inline]
    pub(crate) fn reserve(&mut self, count: usize) {
        let room = self.len + count;
        self.vec.reserve_exact(room.saturating_sub(self.vec.len()));
    }

    /// The entries written, the stale tail cut off; no entries are left.
    #[inline]
    pub(crate) fn finish(&mut self) -> Vec<T> {
        let mut vec = std::mem::take(&mut self.vec);
        vec.truncate(std::mem::take(&mut self.len));
        vec
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signal(name: &str, value: f64) -> Signal {
        Signal::new(name, value)
    }

    #[test]
    fn entries_overwrite_a_stale_vector_and_cut_its_tail() {
        let stale = vec![signal("a", 1.0), signal("b", 2.0), signal("c", 3.0)];
        let mut entries = Entries::over(stale);
        assert!(entries.is_empty());
        assert!(
            entries.find_mut("a").is_none(),
            "stale entries are not this record's"
        );
        entries.append("a", 10.0);
        entries.append("x", 20.0);
        entries.find_mut("a").unwrap().set(11.0);
        assert_eq!(entries.finish(), [signal("a", 11.0), signal("x", 20.0)]);

        let mut fresh = Entries::<Signal>::over(Vec::new());
        fresh.reserve(2);
        fresh.append("a", 1.0);
        fresh.append("b", 2.0);
        fresh.append("c", 3.0);
        assert_eq!(fresh.finish().len(), 3);
    }
}

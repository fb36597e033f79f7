//! Reusable buffers for the large per-batch vectors that cross threads (a piece of input, a
//! batch of records). A batch built on one thread and dropped on another would otherwise return
//! its memory to the allocator there, and every new batch would fault in fresh pages; a
//! [`Pooled`] vector instead goes back to the [`BufferPool`] it came from. Its elements go back
//! with it and are dropped, or reused, by the next thread that takes it (the one that made them).

use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex};

/// Emptied vectors waiting for reuse; at most `keep` of them, so an idle pool holds little.
#[derive(Debug)]
pub struct BufferPool<T> {
    free: Mutex<Vec<Vec<T>>>,
    keep: usize,
}

impl<T> BufferPool<T> {
    /// A pool keeping at most `keep` spare vectors.
    pub fn new(keep: usize) -> Arc<Self> {
        Arc::new(Self {
            free: Mutex::new(Vec::new()),
            keep,
        })
    }

    /// An empty vector with room for at least `capacity` elements, reused when one is spare
    /// (the elements it still held are dropped here).
    pub fn take(self: &Arc<Self>, capacity: usize) -> Pooled<T> {
        let mut pooled = self.take_as_left();
        pooled.vec.clear();
        pooled.vec.reserve(capacity);
        pooled
    }

    /// A vector as it was given back, its elements still in it, for a taker that overwrites
    /// them in place (or an empty one when none is spare).
    pub fn take_as_left(self: &Arc<Self>) -> Pooled<T> {
        let spare = self.free.lock().ok().and_then(|mut free| free.pop());
        Pooled {
            vec: spare.unwrap_or_default(),
            pool: Some(Arc::clone(self)),
        }
    }

    fn give(&self, vec: Vec<T>) {
        if let Ok(mut free) = self.free.lock() {
            if free.len() < self.keep {
                free.push(vec);
            }
        }
    }
}

/// A vector that returns to its [`BufferPool`] when dropped (or is simply freed when detached).
pub struct Pooled<T> {
    vec: Vec<T>,
    pool: Option<Arc<BufferPool<T>>>,
}

impl<T> Pooled<T> {
    /// A vector that belongs to no pool.
    pub fn detached(vec: Vec<T>) -> Self {
        Self { vec, pool: None }
    }
}

impl<T> Default for Pooled<T> {
    fn default() -> Self {
        Self::detached(Vec::new())
    }
}

impl<T> From<Vec<T>> for Pooled<T> {
    fn from(vec: Vec<T>) -> Self {
        Self::detached(vec)
    }
}

impl<T> Deref for Pooled<T> {
    type Target = Vec<T>;

    fn deref(&self) -> &Vec<T> {
        &self.vec
    }
}

impl<T> DerefMut for Pooled<T> {
    fn deref_mut(&mut self) -> &mut Vec<T> {
        &mut self.vec
    }
}

impl<T> Drop for Pooled<T> {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.take() {
            pool.give(std::mem::take(&mut self.vec));
        }
    }
}

impl<T: Clone> Clone for Pooled<T> {
    fn clone(&self) -> Self {
        Self::detached(self.vec.clone())
    }
}

impl<T: PartialEq> PartialEq for Pooled<T> {
    fn eq(&self, other: &Self) -> bool {
        self.vec == other.vec
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Pooled<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.vec.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_vector_comes_back_empty_with_its_room_and_the_pool_stays_bounded() {
        let pool = BufferPool::<u8>::new(1);
        let mut first = pool.take(1000);
        first.extend_from_slice(b"abc");
        let address = first.as_ptr();
        drop(first);
        let again = pool.take(10);
        assert!(again.is_empty());
        assert!(again.capacity() >= 1000);
        assert_eq!(again.as_ptr(), address, "the same allocation is reused");
        let other = pool.take(10);
        drop(again);
        drop(other);
        assert_eq!(pool.free.lock().unwrap().len(), 1, "keeps at most `keep`");
        drop(Pooled::detached(vec![1u8]));
        assert_eq!(pool.free.lock().unwrap().len(), 1);
    }

    #[test]
    fn a_vector_taken_as_left_still_holds_what_it_held() {
        let pool = BufferPool::<String>::new(1);
        let mut batch = pool.take(2);
        batch.push("a".to_owned());
        batch.push("b".to_owned());
        drop(batch);
        let again = pool.take_as_left();
        assert_eq!(*again, ["a", "b"]);
        drop(again);
        assert!(pool.take(1).is_empty(), "take empties it");
        assert!(
            pool.take_as_left().is_empty(),
            "what take emptied comes back empty"
        );
    }
}

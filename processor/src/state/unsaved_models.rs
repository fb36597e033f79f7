//! Model snapshots taken but not yet saved with a committed checkpoint.
//!
//! The operator stage snapshots a vehicle's model at each checkpoint barrier it was used in, and
//! when it leaves memory. Each snapshot belongs to the checkpoint whose barrier follows it, and
//! may only reach the state store in that checkpoint's transaction: a crash before the commit
//! must restore the model as of the previous checkpoint. Until then the snapshot waits here,
//! where the operator also looks first when the vehicle returns.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

/// Snapshots by model key, each with the checkpoint it belongs to (oldest first).
type Entries = BTreeMap<String, Vec<(u64, Arc<Vec<u8>>)>>;

/// Shared between the operator stage (which adds) and the committer (which takes).
#[derive(Debug, Clone, Default)]
pub struct UnsavedModels(Arc<Mutex<Entries>>);

impl UnsavedModels {
    /// Records `snapshot` of `key` as belonging to `checkpoint` (replacing an earlier snapshot
    /// for the same checkpoint).
    pub fn put(&self, key: &str, checkpoint: u64, snapshot: Arc<Vec<u8>>) {
        let mut entries = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let versions = entries.entry(key.to_owned()).or_default();
        match versions.last_mut() {
            Some((last, bytes)) if *last == checkpoint => *bytes = snapshot,
            _ => versions.push((checkpoint, snapshot)),
        }
    }

    /// The newest snapshot of `key` not yet saved.
    pub fn newest(&self, key: &str) -> Option<Arc<Vec<u8>>> {
        let entries = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(key)
            .and_then(|versions| versions.last())
            .map(|(_, bytes)| Arc::clone(bytes))
    }

    /// Per key, the newest snapshot belonging to `checkpoint` or earlier (to save with it).
    pub fn through(&self, checkpoint: u64) -> Vec<(String, Arc<Vec<u8>>)> {
        let entries = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .iter()
            .filter_map(|(key, versions)| {
                let through = versions.partition_point(|(id, _)| *id <= checkpoint);
                (through > 0).then(|| (key.clone(), Arc::clone(&versions[through - 1].1)))
            })
            .collect()
    }

    /// Forgets the snapshots belonging to `checkpoint` or earlier, once it is committed (the
    /// state store has them now; later snapshots stay).
    pub fn forget_through(&self, checkpoint: u64) {
        let mut entries = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        entries.retain(|_, versions| {
            let through = versions.partition_point(|(id, _)| *id <= checkpoint);
            versions.drain(..through);
            !versions.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_saves_only_its_own_and_earlier_snapshots_and_forgets_them_once_committed() {
        let unsaved = UnsavedModels::default();
        unsaved.put("a", 3, Arc::new(vec![1]));
        unsaved.put("a", 4, Arc::new(vec![2]));
        unsaved.put("b", 5, Arc::new(vec![3]));
        unsaved.put("b", 5, Arc::new(vec![4]));
        assert_eq!(unsaved.newest("a").as_deref(), Some(&vec![2]));
        assert_eq!(
            unsaved.through(4),
            vec![("a".to_owned(), Arc::new(vec![2]))]
        );
        assert_eq!(
            unsaved.newest("a").as_deref(),
            Some(&vec![2]),
            "kept until committed"
        );
        unsaved.forget_through(4);
        assert_eq!(unsaved.newest("a"), None);
        assert_eq!(
            unsaved.through(5),
            vec![("b".to_owned(), Arc::new(vec![4]))]
        );
        unsaved.forget_through(5);
        assert!(unsaved.through(9).is_empty());
    }
}

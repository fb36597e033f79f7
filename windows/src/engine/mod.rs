//! The window engine: any [`WindowKind`], any [`AggregateSpec`], allowed lateness with versioned
//! re-emission, emission modes, a state cap, and serde snapshots.
//!
//! Time is event time. The caller feeds values with [`WindowEngine::add`] and the pipeline
//! watermark with [`WindowEngine::advance_watermark`] (and, for early or per-update firing, the
//! processing clock with [`WindowEngine::poll`]). Results carry a `version`: the first emission of
//! a window is 1, every re-emission (a late event, an early firing followed by the final one) is
//! higher, so sinks keep the highest version (upsert) and replays are idempotent.
//!
//! Aligned kinds (tumbling, hopping) keep mergeable accumulators per window and key, accept events
//! in any order, and keep closed windows for `allowed_lateness_ms` so late events update them.
//! Session, stagger and sliding windows depend on event order, so the engine buffers their events
//! until the watermark passes them and processes each key's events in event-time order; with an
//! allowed lateness it waits that much longer before settling them (an event behind
//! `watermark − allowed_lateness` is late), so their results are final when first emitted.

mod aligned;
mod ordered;

use std::hash::Hash;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::aggregate::{AggregateResult, AggregateSpec};
use crate::spec::WindowKind;
use aligned::AlignedState;
use ordered::OrderedState;

/// When results are emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum EmitMode {
    /// Once when the watermark closes the window (and again for each late update).
    #[default]
    OnClose,
    /// Also a partial result every `interval_ms` of processing time while the window is open.
    Early {
        /// Processing-time interval between early firings.
        interval_ms: i64,
    },
    /// A result after every change (every [`WindowEngine::poll`]).
    OnUpdate,
}

/// How a rollup's windows behave.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineConfig {
    /// Window kind.
    pub kind: WindowKind,
    /// Aggregates to compute.
    pub aggregates: AggregateSpec,
    /// How long after a window closes late events still update it (aligned kinds), or how much
    /// longer events are awaited before windows are settled (session, stagger, sliding).
    pub allowed_lateness_ms: i64,
    /// Emission mode.
    pub emit: EmitMode,
    /// Largest number of open (window, key) entries; 0 = unlimited. Events that would open more
    /// are rejected with [`Rejection::StateCap`] (the caller dead-letters and counts them).
    pub max_open_entries: usize,
}

impl EngineConfig {
    /// Problems with the config, for validation.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = self.kind.problems();
        problems.extend(self.aggregates.problems());
        if self.allowed_lateness_ms < 0 {
            problems.push("allowed_lateness must not be negative".to_owned());
        }
        if let EmitMode::Early { interval_ms } = self.emit {
            if interval_ms <= 0 {
                problems.push("early firing interval must be positive".to_owned());
            }
        }
        problems
    }
}

/// One emitted window result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowOutput<K> {
    /// Grouping key.
    pub key: K,
    /// Inclusive start (UTC ms).
    pub start_ms: i64,
    /// Exclusive end (UTC ms).
    pub end_ms: i64,
    /// The aggregates.
    pub result: AggregateResult,
    /// 1 for the first emission of this window, higher for each re-emission.
    pub version: u32,
    /// False for a result emitted while the window is still open (early firing, per update,
    /// shutdown); the final one follows with a higher version.
    pub is_final: bool,
}

/// How the engine hashes keys into its tables. The default hashes the whole key. A caller whose
/// keys come in groups (the signals of one vehicle arrive together in one record) can hash a
/// group's keys to neighbouring buckets, so one record touches a few adjacent cache lines
/// instead of one random line per value; see [`WindowEngine::with_key_hasher`].
pub struct KeyHasher<K>(std::sync::Arc<dyn Fn(&K) -> u64 + Send + Sync>);

impl<K> KeyHasher<K> {
    /// A hasher computing `hash(key)`; equal keys must hash equally.
    pub fn new(hash: impl Fn(&K) -> u64 + Send + Sync + 'static) -> Self {
        Self(std::sync::Arc::new(hash))
    }

    /// The hash of `key`.
    #[inline]
    pub fn hash(&self, key: &K) -> u64 {
        (self.0)(key)
    }
}

impl<K: Hash> Default for KeyHasher<K> {
    fn default() -> Self {
        Self::new(|key: &K| {
            use std::hash::BuildHasher;
            rustc_hash::FxBuildHasher.hash_one(key)
        })
    }
}

impl<K> Clone for KeyHasher<K> {
    fn clone(&self) -> Self {
        Self(std::sync::Arc::clone(&self.0))
    }
}

impl<K> std::fmt::Debug for KeyHasher<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyHasher")
    }
}

/// Why an event was not (fully) taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// A window the event belongs to had closed more than the allowed lateness ago (for hopping
    /// windows the event still counts in its other, open windows).
    #[error("late: window [{window_start_ms}, {window_end_ms}) closed for good at watermark {watermark_ms}")]
    Late {
        /// Start of the missed window.
        window_start_ms: i64,
        /// End of the missed window.
        window_end_ms: i64,
        /// Watermark when the event arrived.
        watermark_ms: i64,
    },
    /// Taking the event would open more entries than `max_open_entries`.
    #[error("state cap: {limit} open window entries reached (max_open_entries)")]
    StateCap {
        /// The configured cap.
        limit: usize,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound(
    serialize = "K: Serialize + Eq + Hash",
    deserialize = "K: DeserializeOwned + Eq + Hash"
))]
enum State<K: Eq + Hash> {
    Aligned(AlignedState<K>),
    Ordered(OrderedState<K>),
}

/// The serializable state of a [`WindowEngine`] (versioned by the snapshot's caller), tagged
/// with the window kind and aggregates it was built for.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound(
    serialize = "K: Serialize + Eq + Hash",
    deserialize = "K: DeserializeOwned + Eq + Hash"
))]
pub struct EngineSnapshot<K: Eq + Hash> {
    fingerprint: String,
    watermark_ms: Option<i64>,
    last_early_ms: Option<i64>,
    state: State<K>,
}

/// Why a snapshot cannot be restored under a configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the snapshot was taken with windows `{snapshot}`, the configuration now says `{config}`")]
pub struct IncompatibleSnapshot {
    /// What the snapshot holds.
    pub snapshot: String,
    /// What the configuration asks for.
    pub config: String,
}

/// Windows of one rollup over every key; see the module documentation.
#[derive(Debug, Clone)]
pub struct WindowEngine<K: Eq + Hash> {
    config: EngineConfig,
    hasher: KeyHasher<K>,
    watermark_ms: Option<i64>,
    last_early_ms: Option<i64>,
    state: State<K>,
}

impl<K: Clone + Eq + Hash + Ord> WindowEngine<K> {
    /// An empty engine (validate the config first).
    pub fn new(config: EngineConfig) -> Self {
        let state = if config.kind.is_aligned() {
            State::Aligned(AlignedState::default())
        } else {
            State::Ordered(OrderedState::default())
        };
        Self {
            config,
            hasher: KeyHasher::default(),
            watermark_ms: None,
            last_early_ms: None,
            state,
        }
    }

    /// The state to checkpoint.
    pub fn snapshot(&self) -> EngineSnapshot<K> {
        EngineSnapshot {
            fingerprint: fingerprint(&self.config),
            watermark_ms: self.watermark_ms,
            last_early_ms: self.last_early_ms,
            state: self.state.clone(),
        }
    }

    /// An engine continuing from `snapshot`; refused when the window kind or the aggregates
    /// differ (lateness, emission mode and the state cap may change between runs).
    pub fn restore(
        config: EngineConfig,
        snapshot: EngineSnapshot<K>,
    ) -> Result<Self, IncompatibleSnapshot> {
        let expected = fingerprint(&config);
        if snapshot.fingerprint != expected {
            return Err(IncompatibleSnapshot {
                snapshot: snapshot.fingerprint,
                config: expected,
            });
        }
        // Restored tables are hashed with the default hasher, which the engine starts with.
        Ok(Self {
            config,
            hasher: KeyHasher::default(),
            watermark_ms: snapshot.watermark_ms,
            last_early_ms: snapshot.last_early_ms,
            state: snapshot.state,
        })
    }

    /// Hashes keys with `hasher` from now on (see [`KeyHasher`]); results do not change.
    pub fn with_key_hasher(mut self, hasher: KeyHasher<K>) -> Self {
        self.hasher = hasher;
        if let State::Aligned(state) = &mut self.state {
            state.rehash(&self.hasher);
        }
        self
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The watermark the engine has seen.
    pub fn watermark_ms(&self) -> Option<i64> {
        self.watermark_ms
    }

    /// Moves the watermark forward without emitting anything: lateness decisions of following
    /// [`Self::add`] calls use it, while closing waits for [`Self::advance_watermark`]. Callers that
    /// batch their advances use this to decide lateness per event, so the outcome does not depend
    /// on batch boundaries.
    pub fn observe_watermark(&mut self, watermark_ms: i64) {
        if self
            .watermark_ms
            .is_none_or(|current| watermark_ms > current)
        {
            self.watermark_ms = Some(watermark_ms);
        }
    }

    /// Adds `value` at `time_ms` for `key`; `item` feeds the distinct count.
    pub fn add(
        &mut self,
        key: &K,
        time_ms: i64,
        value: f64,
        item: Option<&[u8]>,
    ) -> Result<(), Rejection> {
        self.add_many(time_ms, item, &[(key.clone(), value)])
    }

    /// Adds the values of one event at `time_ms` (one per key, such as a record's signals): the
    /// same as [`Self::add`] for each entry in order, returning the first rejection those calls
    /// would have returned, but cheaper for aligned windows (one window lookup per event).
    pub fn add_many(
        &mut self,
        time_ms: i64,
        item: Option<&[u8]>,
        entries: &[(K, f64)],
    ) -> Result<(), Rejection> {
        match &mut self.state {
            State::Aligned(state) => state.add_many(
                &self.config,
                &self.hasher,
                self.watermark_ms,
                time_ms,
                item,
                entries,
            ),
            State::Ordered(state) => {
                let mut first = None;
                for (key, value) in entries {
                    if let Err(rejection) =
                        state.add(&self.config, self.watermark_ms, key, time_ms, *value, item)
                    {
                        first.get_or_insert(rejection);
                    }
                }
                first.map_or(Ok(()), Err)
            }
        }
    }

    /// Advances the watermark (never backwards) and returns what it closes or completes,
    /// including closed windows that late events updated since the last call.
    pub fn advance_watermark(&mut self, watermark_ms: i64) -> Vec<WindowOutput<K>> {
        let watermark_ms = self
            .watermark_ms
            .map_or(watermark_ms, |current| current.max(watermark_ms));
        self.watermark_ms = Some(watermark_ms);
        let mut out = Vec::new();
        match &mut self.state {
            State::Aligned(state) => state.advance(&self.config, watermark_ms, &mut out),
            State::Ordered(state) => state.advance(&self.config, watermark_ms, &mut out),
        }
        out
    }

    /// Emission-mode firings at processing time `now_ms`: per-update results, or early results
    /// when the interval has passed. Nothing with [`EmitMode::OnClose`].
    pub fn poll(&mut self, now_ms: i64) -> Vec<WindowOutput<K>> {
        let due = match self.config.emit {
            EmitMode::OnClose => false,
            EmitMode::OnUpdate => true,
            EmitMode::Early { interval_ms } => {
                let due = self
                    .last_early_ms
                    .is_none_or(|last| now_ms - last >= interval_ms);
                if due {
                    self.last_early_ms = Some(now_ms);
                }
                due
            }
        };
        if !due {
            return Vec::new();
        }
        self.partial(true)
    }

    /// Emits every open window as a partial result (shutdown with `emit_partial`); state stays.
    pub fn emit_partial(&mut self) -> Vec<WindowOutput<K>> {
        self.partial(false)
    }

    fn partial(&mut self, only_changed: bool) -> Vec<WindowOutput<K>> {
        let mut out = Vec::new();
        match &mut self.state {
            State::Aligned(state) => {
                state.partial(&self.config, self.watermark_ms, only_changed, &mut out)
            }
            State::Ordered(state) => state.partial(&self.config, only_changed, &mut out),
        }
        out
    }

    /// Open (window, key) entries — plus buffered events for order-dependent kinds.
    pub fn open_entries(&self) -> usize {
        match &self.state {
            State::Aligned(state) => state.entries(),
            State::Ordered(state) => state.entries(),
        }
    }

    /// Approximate bytes of state, for the state-size metric.
    pub fn state_bytes(&self) -> usize {
        match &self.state {
            State::Aligned(state) => state.state_bytes(),
            State::Ordered(state) => state.state_bytes(),
        }
    }
}

/// What a snapshot must agree with: the window kind and the aggregates.
fn fingerprint(config: &EngineConfig) -> String {
    format!("{:?} {:?}", config.kind, config.aggregates)
}

#[cfg(test)]
mod tests;

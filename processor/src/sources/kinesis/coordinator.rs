//! The lease coordinator of one worker: renews its leases, takes free and expired ones and
//! balances toward an even share, syncs shards and creates leases (children after a reshard),
//! writes checkpoints for committed positions, cleans up finished parents, and releases its
//! leases at shutdown. It starts a [`ShardReader`] for each lease it gains and stops it at once
//! when the lease is lost.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::balance::plan_takes;
use super::calls::CallError;
use super::handoff::HandoffStore;
use super::lease::{compare_with_checkpoint, Lease, LeaseCheckpoint};
use super::lease_table::LeaseTable;
use super::metrics::KinesisMetrics;
use super::reader::{stream_marker, ShardReader, StartAt};
use super::record_counts::RecordCounts;
use super::shards::{children_of, leases_to_create, list_shards, ShardInfo};
use crate::config::{InitialPosition, KinesisSourceConfig};
use crate::position::{Offset, Position};
use crate::sources::{
    HashRange, LaneEvent, LaneSeed, LaneState, LaneStates, SourceBatch, SourceError,
};

/// Committed positions and the lane states of the same checkpoint.
#[derive(Debug, Clone, Default)]
pub struct CommitRequest {
    /// Positions whose outputs are durable.
    pub positions: Vec<Position>,
    /// Per-shard operator state at those positions (with `handoff` only).
    pub lanes: LaneStates,
}

/// Committed positions waiting for the coordinator's next cycle (the pipeline never waits
/// for the lease table).
pub type PendingCommit = Arc<Mutex<Option<CommitRequest>>>;

/// What the source and its coordinator share.
#[derive(Clone, Default)]
pub struct Shared {
    /// Counters.
    pub metrics: Arc<KinesisMetrics>,
    /// Shards held now.
    pub owned: OwnedShards,
    /// Records committed per shard since its last checkpoint write.
    pub record_counts: RecordCounts,
    /// Positions the pipeline committed, for the next cycle.
    pub pending_commit: PendingCommit,
}

/// How often the source's counters and per-shard lag are logged.
const REPORT_EVERY: Duration = Duration::from_secs(60);

/// Shards this worker reads now; batches of any other shard are dropped on arrival.
pub type OwnedShards = Arc<Mutex<BTreeSet<String>>>;

/// A lease this worker holds.
struct Held {
    lease: Lease,
    stop: CancellationToken,
    /// Committed but not yet written to the table (written every `checkpoint_interval`).
    unwritten: Option<LeaseCheckpoint>,
    /// The lane state committed with `unwritten`, stored just before it (with `handoff`); or,
    /// without `unwritten`, a newer state at the checkpointed position (windows closed by
    /// idleness, partial results emitted at shutdown), stored alone.
    unwritten_lane: Option<(Offset, LaneState)>,
    /// The lane state last stored.
    stored_lane: Option<LaneState>,
    /// When this worker last wrote its checkpoint (`None`: not yet).
    last_write: Option<Instant>,
}

impl Held {
    /// True when nothing was written for this lease within `interval` (or ever).
    fn quiet_for(&self, interval: Duration) -> bool {
        self.last_write.is_none_or(|at| at.elapsed() >= interval)
    }
}

/// What the coordinator last saw of another worker's lease, to tell a dead owner.
struct Observed {
    counter: u64,
    owner: Option<String>,
    since: Instant,
}

/// Everything a worker needs to hold and read leases.
pub struct Coordinator {
    table: LeaseTable,
    kinesis: aws_sdk_kinesis::Client,
    config: Arc<KinesisSourceConfig>,
    me: String,
    shared: Shared,
    outbox: mpsc::Sender<Result<SourceBatch, SourceError>>,
    max_record_bytes: usize,
    idle_after: Duration,
    restored: BTreeMap<String, Offset>,
    held: BTreeMap<String, Held>,
    observed: HashMap<String, Observed>,
    shards: Vec<ShardInfo>,
    taking: bool,
    last_renew: Instant,
    last_take: Option<Instant>,
    last_sync: Option<Instant>,
    last_report: Instant,
    handoff: Option<HandoffStore>,
    /// Shards lost since the pipeline was last told (their lanes are dropped).
    lost_lanes: Vec<String>,
}

/// The lease checkpoint a committed offset stands for.
fn checkpoint_of(offset: &Offset) -> Option<LeaseCheckpoint> {
    match offset {
        Offset::Finished => Some(LeaseCheckpoint::ShardEnd),
        Offset::Sequence {
            sequence_number,
            sub_sequence_number,
        } => Some(LeaseCheckpoint::Sequence {
            sequence_number: sequence_number.clone(),
            sub_sequence_number: *sub_sequence_number,
        }),
        _ => None,
    }
}

/// True when `local` (this worker's stored position) is past the lease checkpoint, so reading
/// resumes from it rather than re-reading records its state already holds.
fn local_is_ahead(local: &Offset, lease: &LeaseCheckpoint) -> bool {
    compare_with_checkpoint(local, lease).is_some_and(std::cmp::Ordering::is_gt)
}

impl Coordinator {
    /// A coordinator for worker `me`; `restored` holds this worker's stored positions.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        table: LeaseTable,
        kinesis: aws_sdk_kinesis::Client,
        config: Arc<KinesisSourceConfig>,
        me: String,
        shared: Shared,
        outbox: mpsc::Sender<Result<SourceBatch, SourceError>>,
        max_record_bytes: usize,
        idle_after: Duration,
        restored: &[Position],
    ) -> Self {
        Self {
            table,
            kinesis,
            config,
            me,
            shared,
            outbox,
            max_record_bytes,
            idle_after,
            restored: restored
                .iter()
                .map(|p| (p.partition.clone(), p.offset.clone()))
                .collect(),
            held: BTreeMap::new(),
            observed: HashMap::new(),
            shards: Vec::new(),
            taking: true,
            last_renew: Instant::now(),
            last_take: None,
            last_sync: None,
            last_report: Instant::now(),
            handoff: None,
            lost_lanes: Vec::new(),
        }
    }

    /// Stores each shard's lane with its checkpoints and continues it when taking a lease. The
    /// store, not this worker's own state, then says where a shard resumes.
    pub fn with_handoff(mut self, store: HandoffStore) -> Self {
        self.handoff = Some(store);
        self.restored.clear();
        self
    }

    /// Shards held now.
    pub fn held_shards(&self) -> Vec<String> {
        self.held.keys().cloned().collect()
    }

    /// One round of due work: renewals, shard sync, taking and balancing, committed positions,
    /// delayed checkpoints.
    pub async fn tick(&mut self) -> Result<(), CallError> {
        let now = Instant::now();
        self.apply_pending_commit().await?;
        if now.duration_since(self.last_renew) >= self.config.renew_every().std() {
            self.renew().await?;
            self.last_renew = now;
        }
        if self.taking {
            let due = |last: Option<Instant>, every: Duration| {
                last.is_none_or(|last| now.duration_since(last) >= every)
            };
            if due(self.last_sync, self.config.shard_sync_interval.std()) {
                self.sync_shards().await?;
                self.last_sync = Some(now);
            }
            if due(self.last_take, self.config.take_interval.std()) {
                self.take_cycle().await?;
                self.last_take = Some(now);
            }
        }
        if now.duration_since(self.last_report) >= REPORT_EVERY {
            self.last_report = now;
            let snapshot = self.shared.metrics.snapshot();
            tracing::info!(
                worker = %self.me,
                leases = ?self.held.keys().collect::<Vec<_>>(),
                millis_behind_latest = ?snapshot.millis_behind_latest,
                "Kinesis source: {snapshot}"
            );
        }
        let interval = self.config.checkpoint_interval.std();
        let due: Vec<String> = self
            .held
            .iter()
            .filter(|(_, held)| {
                (held.unwritten.is_some() || held.unwritten_lane.is_some())
                    && held.quiet_for(interval)
            })
            .map(|(key, _)| key.clone())
            .collect();
        self.write_due(&due).await?;
        self.announce_lost().await;
        Ok(())
    }

    /// Tells the pipeline which shards' lanes to drop (their leases moved to other workers).
    async fn announce_lost(&mut self) {
        for key in std::mem::take(&mut self.lost_lanes) {
            let mut marker = stream_marker(&key, false);
            marker.lane = Some(LaneEvent::Close);
            let _ = self.outbox.send(Ok(marker)).await;
        }
    }

    async fn renew(&mut self) -> Result<(), CallError> {
        let keys: Vec<String> = self.held.keys().cloned().collect();
        for key in keys {
            let Some(held) = self.held.get(&key) else {
                continue;
            };
            match self.table.renew(&held.lease, &self.me).await? {
                Some(counter) => {
                    if let Some(held) = self.held.get_mut(&key) {
                        held.lease.counter = counter;
                    }
                }
                None => self.lose(&key),
            }
        }
        Ok(())
    }

    /// Stops reading a lease another worker now holds; it is never checkpointed again here.
    fn lose(&mut self, key: &str) {
        if self.stop_holding(key).is_some() {
            if self.handoff.is_some() {
                self.lost_lanes.push(key.to_owned());
            }
            self.shared.metrics.add_leases_lost(1);
            tracing::warn!(shard = key, worker = %self.me, "lease lost to another worker; stopped reading it");
        }
    }

    /// Stops the shard's reader and forgets the shard here; returns its lease if it was held.
    fn stop_holding(&mut self, key: &str) -> Option<Held> {
        if let Ok(mut owned) = self.shared.owned.lock() {
            owned.remove(key);
        }
        self.shared.record_counts.forget(key);
        let held = self.held.remove(key)?;
        held.stop.cancel();
        Some(held)
    }

    /// `ListShards`, then creates the leases new shards need.
    pub async fn sync_shards(&mut self) -> Result<(), CallError> {
        self.shards = list_shards(
            &self.kinesis,
            &self.config.stream_name,
            &self.config.retry,
            &self.shared.metrics,
        )
        .await?;
        let existing: BTreeSet<String> = self
            .table
            .scan()
            .await?
            .into_iter()
            .map(|l| l.key)
            .collect();
        let initial = match self.config.initial_position {
            InitialPosition::TrimHorizon => LeaseCheckpoint::TrimHorizon,
            InitialPosition::Latest => LeaseCheckpoint::Latest,
            InitialPosition::AtTimestamp => LeaseCheckpoint::AtTimestamp,
        };
        for lease in leases_to_create(&self.shards, &existing, &initial) {
            if self.table.create(&lease).await? {
                tracing::info!(shard = %lease.key, parents = ?lease.parents, "lease created");
            }
        }
        Ok(())
    }

    async fn take_cycle(&mut self) -> Result<(), CallError> {
        let leases = self.table.scan().await?;
        let now = Instant::now();
        let failover = self.config.failover_time.std();
        let mut expired = BTreeSet::new();
        for lease in &leases {
            let entry = self
                .observed
                .entry(lease.key.clone())
                .or_insert_with(|| Observed {
                    counter: lease.counter,
                    owner: lease.owner.clone(),
                    since: now,
                });
            if entry.counter != lease.counter || entry.owner != lease.owner {
                *entry = Observed {
                    counter: lease.counter,
                    owner: lease.owner.clone(),
                    since: now,
                };
            }
            let mine_but_not_held = lease.owner.as_deref() == Some(self.me.as_str())
                && !self.held.contains_key(&lease.key);
            if mine_but_not_held
                || (lease.owner.is_some() && now.duration_since(entry.since) >= failover)
            {
                expired.insert(lease.key.clone());
            }
        }
        // A lease this worker holds but the table gives to another: lost.
        for lease in &leases {
            if self.held.contains_key(&lease.key) && lease.owner.as_deref() != Some(&self.me) {
                self.lose(&lease.key);
            }
        }
        let plan = plan_takes(
            &leases,
            &self.me,
            &expired,
            self.config.max_leases_per_worker,
            self.config.max_leases_to_steal,
            |keys| keys.shuffle(&mut rand::rng()),
        );
        let by_key: BTreeMap<&str, &Lease> = leases.iter().map(|l| (l.key.as_str(), l)).collect();
        let mut gained = Vec::new();
        for (key, stolen) in plan
            .take
            .iter()
            .map(|k| (k, false))
            .chain(plan.steal.iter().map(|k| (k, true)))
        {
            let Some(lease) = by_key.get(key.as_str()) else {
                continue;
            };
            if let Some(counter) = self.table.take(lease, &self.me).await? {
                let mut lease = (*lease).clone();
                lease.counter = counter;
                lease.owner = Some(self.me.clone());
                if stolen {
                    self.shared.metrics.add_leases_stolen(1);
                } else {
                    self.shared.metrics.add_leases_taken(1);
                }
                tracing::info!(shard = %lease.key, worker = %self.me, previous = ?by_key[key.as_str()].owner, stolen, checkpoint = lease.checkpoint.as_attribute(), "lease taken");
                gained.push(lease);
            }
        }
        // Lanes of lost shards go before lanes of gained ones (a shard may be both).
        self.announce_lost().await;
        let mut starts = Vec::new();
        for lease in &gained {
            starts.push(self.lane_start(lease).await?);
        }
        // Owned before announced: the announcement moves the shard's position, and the source
        // drops position-moving batches of shards it does not own.
        if let Ok(mut owned) = self.shared.owned.lock() {
            owned.extend(gained.iter().map(|lease| lease.key.clone()));
        }
        // Announce every new shard to the watermark before any of them is read, so records
        // of one are not late because another was read first.
        for (lease, (event, resume_after)) in gained.iter().zip(&starts) {
            let mut marker = stream_marker(&lease.key, false);
            if event.is_some() {
                // The shard's position restarts where its state does (any older position of an
                // earlier hold here is stale).
                marker.end = resume_after.clone().or_else(|| match &lease.checkpoint {
                    LeaseCheckpoint::Sequence {
                        sequence_number,
                        sub_sequence_number,
                    } => Some(Offset::Sequence {
                        sequence_number: sequence_number.clone(),
                        sub_sequence_number: *sub_sequence_number,
                    }),
                    _ => None,
                });
            }
            marker.lane = event.clone();
            let _ = self.outbox.send(Ok(marker)).await;
        }
        // Children now hold the watermark in their parents' place.
        for parent in gained.iter().flat_map(|lease| lease.parents.iter()) {
            let _ = self.outbox.send(Ok(stream_marker(parent, true))).await;
        }
        for (lease, (_, resume_after)) in gained.into_iter().zip(starts) {
            self.start_reading(lease, resume_after);
        }
        self.clean_up_finished(&leases).await?;
        Ok(())
    }

    /// With `handoff`: the lane event announcing `lease`'s shard, and the stored position to
    /// resume after when the stored lane is ahead of the lease checkpoint.
    async fn lane_start(
        &self,
        lease: &Lease,
    ) -> Result<(Option<LaneEvent>, Option<Offset>), CallError> {
        let Some(store) = &self.handoff else {
            return Ok((None, None));
        };
        let range = self.hash_range(lease);
        if let Some(stored) = store.get(&lease.key).await? {
            if matches!(stored.position, Offset::Finished) {
                // Read to its end already (the SHARD_END checkpoint did not get written): its
                // final state waits in the store for the children.
                return Ok((None, Some(Offset::Finished)));
            }
            if stored.covers(&lease.checkpoint) {
                tracing::info!(shard = %lease.key, position = %stored.position, previous = %stored.owner, state_bytes = stored.state.len(), "continuing the shard's handed-over state");
                let event = LaneEvent::Open {
                    range,
                    seed: LaneSeed::Resume(Arc::new(stored.state)),
                };
                return Ok((Some(event), Some(stored.position)));
            }
            tracing::warn!(shard = %lease.key, position = %stored.position, checkpoint = lease.checkpoint.as_attribute(), object = %store.url(&lease.key), "stored lane is behind the lease checkpoint; the shard's open windows start over");
        } else if lease.checkpoint.is_initial() && !lease.parents.is_empty() {
            let mut parents = Vec::new();
            for parent in &lease.parents {
                match store.get(parent).await? {
                    Some(stored) if matches!(stored.position, Offset::Finished) => {
                        parents.push(Arc::new(stored.state));
                    }
                    _ => {
                        tracing::warn!(shard = %lease.key, parent = %parent, object = %store.url(parent), "no final state stored for a parent shard; its vehicles' open windows start over in the child");
                    }
                }
            }
            tracing::info!(shard = %lease.key, parents = ?lease.parents, inherited = parents.len(), "child shard continues its parents' state");
            let event = LaneEvent::Open {
                range,
                seed: LaneSeed::Inherit(parents),
            };
            return Ok((Some(event), None));
        } else if !lease.checkpoint.is_initial() {
            tracing::warn!(shard = %lease.key, checkpoint = lease.checkpoint.as_attribute(), object = %store.url(&lease.key), "no state stored for a checkpointed shard; its open windows start over");
        }
        let event = LaneEvent::Open {
            range,
            seed: LaneSeed::Fresh,
        };
        Ok((Some(event), None))
    }

    /// The shard's hash-key range: from its lease, else from `ListShards`, else all keys.
    fn hash_range(&self, lease: &Lease) -> HashRange {
        lease
            .hash_key_range
            .or_else(|| {
                self.shards
                    .iter()
                    .find(|shard| shard.id == lease.key)
                    .map(|shard| shard.hash_key_range)
            })
            .unwrap_or((0, u128::MAX))
    }

    fn start_reading(&mut self, lease: Lease, resume_after: Option<Offset>) {
        let key = lease.key.clone();
        let start = match &resume_after {
            Some(offset) => StartAt::after(offset),
            None => self.start_position(&lease),
        };
        let stop = CancellationToken::new();
        let unwritten = start.is_none().then_some(LeaseCheckpoint::ShardEnd);
        if let Ok(mut owned) = self.shared.owned.lock() {
            owned.insert(key.clone());
        }
        match start {
            Some(start) => {
                let reader = ShardReader {
                    client: self.kinesis.clone(),
                    config: Arc::clone(&self.config),
                    metrics: Arc::clone(&self.shared.metrics),
                    shard: Arc::from(key.as_str()),
                    hash_key_range: lease.hash_key_range,
                    max_record_bytes: self.max_record_bytes,
                    outbox: self.outbox.clone(),
                    stop: stop.clone(),
                    idle_after: self.idle_after,
                };
                tokio::spawn(reader.run(start));
            }
            None => {
                // This worker's state already holds the whole shard: only the checkpoint is due.
                tracing::info!(shard = %key, "already read to its end here; checkpointing SHARD_END");
            }
        }
        self.held.insert(
            key,
            Held {
                lease,
                stop,
                unwritten,
                unwritten_lane: None,
                stored_lane: None,
                last_write: None,
            },
        );
    }

    /// Where to read a lease from: its checkpoint, or this worker's stored position when that
    /// is further (None: the shard is already fully read here).
    fn start_position(&self, lease: &Lease) -> Option<StartAt> {
        if let Some(local) = self.restored.get(&lease.key) {
            if local_is_ahead(local, &lease.checkpoint) {
                return StartAt::after(local);
            }
        }
        Some(match &lease.checkpoint {
            LeaseCheckpoint::TrimHorizon | LeaseCheckpoint::ShardEnd => StartAt::TrimHorizon,
            LeaseCheckpoint::Latest => StartAt::Latest,
            LeaseCheckpoint::AtTimestamp => StartAt::AtTimestamp(
                self.config
                    .initial_timestamp
                    .as_deref()
                    .and_then(|t| telemetry::timestamp::parse_rfc3339(t).ok())
                    .unwrap_or(0),
            ),
            LeaseCheckpoint::Sequence {
                sequence_number,
                sub_sequence_number,
            } => StartAt::after(&Offset::Sequence {
                sequence_number: sequence_number.clone(),
                sub_sequence_number: *sub_sequence_number,
            })
            .unwrap_or(StartAt::TrimHorizon),
        })
    }

    /// Deletes finished leases whose children are all being processed.
    async fn clean_up_finished(&mut self, leases: &[Lease]) -> Result<(), CallError> {
        let children = children_of(&self.shards);
        let by_key: BTreeMap<&str, &Lease> = leases.iter().map(|l| (l.key.as_str(), l)).collect();
        for lease in leases.iter().filter(|l| l.checkpoint.is_shard_end()) {
            let kids = children.get(&lease.key).cloned().unwrap_or_default();
            let started = !kids.is_empty()
                && kids.iter().all(|kid| {
                    by_key
                        .get(kid.as_str())
                        .is_some_and(|k| k.owner.is_some() || !k.checkpoint.is_initial())
                });
            if started && self.table.delete_finished(&lease.key).await? {
                tracing::info!(shard = %lease.key, children = ?kids, "finished lease cleaned up");
            }
        }
        Ok(())
    }

    async fn apply_pending_commit(&mut self) -> Result<(), CallError> {
        let pending = self
            .shared
            .pending_commit
            .lock()
            .ok()
            .and_then(|mut pending| pending.take());
        match pending {
            Some(request) => self.commit(&request.positions, &request.lanes).await,
            None => Ok(()),
        }
    }

    /// Takes committed positions: checkpoints shard ends at once, others once
    /// `checkpoint_interval` passed since the last write or `checkpoint_records` records were read.
    pub async fn commit(
        &mut self,
        positions: &[Position],
        lanes: &LaneStates,
    ) -> Result<(), CallError> {
        let interval = self.config.checkpoint_interval.std();
        let mut now_due = Vec::new();
        for position in positions {
            let Some(held) = self.held.get_mut(&position.partition) else {
                continue;
            };
            let Some(checkpoint) = checkpoint_of(&position.offset) else {
                continue;
            };
            if checkpoint == held.lease.checkpoint {
                // No new records, but the state may have moved on at this position.
                let changed = lanes.get(&position.partition).filter(|state| {
                    held.stored_lane
                        .as_ref()
                        .is_none_or(|stored| stored.as_slice() != state.as_slice())
                });
                if let (Some(state), Some(_)) = (changed, &self.handoff) {
                    held.unwritten_lane = Some((position.offset.clone(), Arc::clone(state)));
                    if held.quiet_for(interval) {
                        now_due.push(position.partition.clone());
                    }
                }
                continue;
            }
            // Only forward: a position from before this lease was last taken is stale.
            if !local_is_ahead(&position.offset, &held.lease.checkpoint) {
                continue;
            }
            let end = checkpoint.is_shard_end();
            held.unwritten = Some(checkpoint);
            if self.handoff.is_some() {
                held.unwritten_lane = lanes
                    .get(&position.partition)
                    .map(|state| (position.offset.clone(), Arc::clone(state)));
            }
            let records = self
                .shared
                .record_counts
                .committed(&position.partition, &position.offset);
            let enough_records =
                self.config.checkpoint_records > 0 && records >= self.config.checkpoint_records;
            if end || enough_records || held.quiet_for(interval) {
                now_due.push(position.partition.clone());
            }
        }
        self.write_due(&now_due).await
    }

    /// Writes what `keys` have pending: their lane states first (so a checkpoint is never ahead
    /// of the stored lane), then their lease checkpoints.
    async fn write_due(&mut self, keys: &[String]) -> Result<(), CallError> {
        self.store_lanes(keys).await?;
        for key in keys {
            self.write_checkpoint(key).await?;
        }
        Ok(())
    }

    /// Stores the pending lane states of `keys` concurrently (a task with many shards must not
    /// delay its renewals by one S3 round trip per shard).
    async fn store_lanes(&mut self, keys: &[String]) -> Result<(), CallError> {
        let Some(store) = &self.handoff else {
            return Ok(());
        };
        let mut puts = tokio::task::JoinSet::new();
        for key in keys {
            let Some((position, state)) = self
                .held
                .get(key)
                .and_then(|held| held.unwritten_lane.clone())
            else {
                continue;
            };
            let (store, key, me) = (store.clone(), key.clone(), self.me.clone());
            puts.spawn(async move {
                store.put(&key, &position, &me, &state).await?;
                Ok::<_, CallError>((key, state))
            });
        }
        while let Some(joined) = puts.join_next().await {
            let (key, state) =
                joined.map_err(|err| CallError::Fatal(format!("storing a lane: {err}")))??;
            if let Some(held) = self.held.get_mut(&key) {
                // Stored: the checkpoint may follow (or, at an unchanged position, nothing).
                held.unwritten_lane = None;
                if held.unwritten.is_none() {
                    held.last_write = Some(Instant::now());
                }
                held.stored_lane = Some(state);
            }
            tracing::debug!(shard = %key, "lane state stored");
        }
        Ok(())
    }

    async fn write_checkpoint(&mut self, key: &str) -> Result<(), CallError> {
        let Some(held) = self.held.get(key) else {
            return Ok(());
        };
        let Some(checkpoint) = held.unwritten.clone() else {
            return Ok(());
        };
        let end = checkpoint.is_shard_end();
        if end
            && !self
                .shards
                .iter()
                .any(|s| s.parents.iter().any(|p| p == key))
        {
            // The children are not known yet: find them now, so the lease names them.
            self.sync_shards().await?;
        }
        let children = if end {
            children_of(&self.shards).remove(key).unwrap_or_default()
        } else {
            Vec::new()
        };
        let Some(held) = self.held.get(key) else {
            return Ok(());
        };
        match self
            .table
            .checkpoint(&held.lease, &self.me, &checkpoint, &children)
            .await?
        {
            Some(counter) => {
                tracing::debug!(
                    shard = key,
                    checkpoint = checkpoint.as_attribute(),
                    "checkpoint written"
                );
                if end {
                    // Done with this shard: stop renewing; children become ready for takers.
                    self.stop_holding(key);
                    tracing::info!(shard = key, children = ?children, "SHARD_END checkpointed");
                    self.last_take = None;
                } else if let Some(held) = self.held.get_mut(key) {
                    self.shared.record_counts.written(key);
                    held.lease.counter = counter;
                    held.lease.checkpoint = checkpoint;
                    held.lease.owner_switches = 0;
                    held.unwritten = None;
                    held.last_write = Some(Instant::now());
                }
            }
            None => self.lose(key),
        }
        Ok(())
    }

    /// At shutdown: stops taking leases and reading, writes pending checkpoints, and releases
    /// every lease so other workers take them without waiting for expiry.
    pub async fn release_all(&mut self) -> Result<(), CallError> {
        self.taking = false;
        self.apply_pending_commit().await?;
        for held in self.held.values() {
            held.stop.cancel();
        }
        let keys: Vec<String> = self.held.keys().cloned().collect();
        self.write_due(&keys).await?;
        let keys: Vec<String> = self.held.keys().cloned().collect();
        for key in keys {
            let Some(held) = self.stop_holding(&key) else {
                continue;
            };
            if self.table.release(&held.lease, &self.me).await?.is_some() {
                self.shared.metrics.add_leases_released(1);
                tracing::info!(shard = %key, worker = %self.me, "lease released");
            }
        }
        Ok(())
    }

    /// Stops every reader without releasing (the process is failing).
    pub fn stop_readers(&mut self) {
        for held in self.held.values() {
            held.stop.cancel();
        }
    }

    /// Sends a fatal coordinator error to the pipeline.
    pub async fn report(&self, err: CallError) {
        let _ = self
            .outbox
            .send(Err(SourceError::Unusable(format!(
                "lease table {}: {err}",
                self.table.name()
            ))))
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(n: &str, sub: u64) -> Offset {
        Offset::Sequence {
            sequence_number: n.to_owned(),
            sub_sequence_number: sub,
        }
    }

    #[test]
    fn a_local_position_wins_only_when_it_is_further() {
        let lease = LeaseCheckpoint::Sequence {
            sequence_number: "100".to_owned(),
            sub_sequence_number: 2,
        };
        assert!(local_is_ahead(&seq("101", 0), &lease));
        assert!(local_is_ahead(&seq("100", 3), &lease));
        assert!(!local_is_ahead(&seq("100", 2), &lease));
        assert!(!local_is_ahead(&seq("99", 9), &lease));
        assert!(local_is_ahead(&seq("1", 0), &LeaseCheckpoint::TrimHorizon));
        assert!(local_is_ahead(&Offset::Finished, &lease));
        assert!(!local_is_ahead(&seq("1", 0), &LeaseCheckpoint::ShardEnd));
        // Real sequence numbers have 56 digits, beyond any integer type.
        let real = LeaseCheckpoint::Sequence {
            sequence_number: "49680618652175220658574588009825280700336649637527027714".to_owned(),
            sub_sequence_number: 0,
        };
        assert!(local_is_ahead(
            &seq(
                "49680618652175220658574588009825280700336649637527027715",
                0
            ),
            &real
        ));
        assert!(!local_is_ahead(
            &seq(
                "49680618652175220658574588009825280700336649637527027713",
                5
            ),
            &real
        ));
    }
}

//! Shard discovery: `ListShards` with pagination, the parent/child lineage it reveals (Kinesis
//! and kinesalite both name parents; children are found through them), and which leases a shard
//! sync must create.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_kinesis::Client;

use super::calls::{classify, with_retries, CallError};
use super::lease::{Lease, LeaseCheckpoint};
use super::metrics::KinesisMetrics;
use crate::sinks::delivery::RetryConfig;

/// One shard as `ListShards` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardInfo {
    /// Shard id.
    pub id: String,
    /// `ParentShardId` and `AdjacentParentShardId`, when set.
    pub parents: Vec<String>,
    /// Hash-key range, inclusive.
    pub hash_key_range: (u128, u128),
    /// True when the shard is closed (it has an ending sequence number).
    pub closed: bool,
}

/// Every shard of `stream`, following `NextToken` (sent alone, as the API requires).
pub async fn list_shards(
    client: &Client,
    stream: &str,
    retry: &RetryConfig,
    metrics: &KinesisMetrics,
) -> Result<Vec<ShardInfo>, CallError> {
    let mut shards = Vec::new();
    let mut next_token: Option<String> = None;
    loop {
        let page = with_retries(retry, "ListShards", metrics, || {
            let request = match &next_token {
                Some(token) => client.list_shards().next_token(token),
                None => client.list_shards().stream_name(stream),
            };
            async move { request.send().await.map_err(classify) }
        })
        .await?;
        for shard in page.shards() {
            let range = shard.hash_key_range();
            let parse = |text: Option<&str>| text.and_then(|t| t.parse::<u128>().ok());
            let hash_key_range = (
                parse(range.map(|r| r.starting_hash_key())).unwrap_or(0),
                parse(range.map(|r| r.ending_hash_key())).unwrap_or(u128::MAX),
            );
            shards.push(ShardInfo {
                id: shard.shard_id().to_owned(),
                parents: shard
                    .parent_shard_id()
                    .into_iter()
                    .chain(shard.adjacent_parent_shard_id())
                    .map(str::to_owned)
                    .collect(),
                hash_key_range,
                closed: shard
                    .sequence_number_range()
                    .and_then(|r| r.ending_sequence_number())
                    .is_some(),
            });
        }
        match page.next_token() {
            Some(token) if !token.is_empty() => next_token = Some(token.to_owned()),
            _ => break,
        }
    }
    Ok(shards)
}

/// Children of each shard, from the parents the children name.
pub fn children_of(shards: &[ShardInfo]) -> BTreeMap<String, Vec<String>> {
    let mut children: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for shard in shards {
        for parent in &shard.parents {
            children
                .entry(parent.clone())
                .or_default()
                .push(shard.id.clone());
        }
    }
    children
}

/// The leases a shard sync creates, given the leases that exist.
///
/// - A shard whose descendant already has a lease was read before (its lease was cleaned up):
///   none.
/// - On an empty table, `initial` applies: `TRIM_HORIZON` leases every shard (ancestors are read
///   first, children wait for them); `LATEST`/`AT_TIMESTAMP` lease only open shards.
/// - Otherwise a shard gets a lease when its parents have leases (new children after a reshard,
///   which start at `TRIM_HORIZON`) or when it has no known parent.
pub fn leases_to_create(
    shards: &[ShardInfo],
    existing: &BTreeSet<String>,
    initial: &LeaseCheckpoint,
) -> Vec<Lease> {
    let children = children_of(shards);
    let known: BTreeSet<&str> = shards.iter().map(|s| s.id.as_str()).collect();
    let mut leased_below: BTreeMap<&str, bool> = BTreeMap::new();
    fn has_leased_descendant<'a>(
        id: &'a str,
        children: &'a BTreeMap<String, Vec<String>>,
        existing: &BTreeSet<String>,
        memo: &mut BTreeMap<&'a str, bool>,
    ) -> bool {
        if let Some(&known) = memo.get(id) {
            return known;
        }
        memo.insert(id, false);
        let found = children.get(id).is_some_and(|kids| {
            kids.iter().any(|kid| {
                existing.contains(kid) || has_leased_descendant(kid, children, existing, memo)
            })
        });
        memo.insert(id, found);
        found
    }
    let fresh_table = existing.is_empty();
    let mut created = Vec::new();
    for shard in shards {
        if existing.contains(&shard.id)
            || has_leased_descendant(&shard.id, &children, existing, &mut leased_below)
        {
            continue;
        }
        let parents: Vec<String> = shard
            .parents
            .iter()
            .filter(|p| known.contains(p.as_str()))
            .cloned()
            .collect();
        let checkpoint = if fresh_table {
            match initial {
                // Children are read after their parents, from their first record.
                LeaseCheckpoint::TrimHorizon => LeaseCheckpoint::TrimHorizon,
                _ if shard.closed => continue,
                other => other.clone(),
            }
        } else if parents.is_empty() || parents.iter().all(|p| existing.contains(p)) {
            if parents.is_empty() {
                initial.clone()
            } else {
                LeaseCheckpoint::TrimHorizon
            }
        } else {
            continue;
        };
        // On a fresh LATEST table, an open shard's closed parents get no lease: it starts alone.
        let parents = if fresh_table && !matches!(initial, LeaseCheckpoint::TrimHorizon) {
            Vec::new()
        } else {
            parents
        };
        created.push(Lease::new(
            &shard.id,
            checkpoint,
            parents,
            Some(shard.hash_key_range),
        ));
    }
    created
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A shard over the whole hash range, for tests here and in `fleetstream leases`.
    pub(crate) fn shard(id: &str, parents: &[&str], closed: bool) -> ShardInfo {
        ShardInfo {
            id: id.to_owned(),
            parents: parents.iter().map(|p| (*p).to_owned()).collect(),
            hash_key_range: (0, u128::MAX),
            closed,
        }
    }

    fn keys(leases: &[Lease]) -> Vec<&str> {
        leases.iter().map(|l| l.key.as_str()).collect()
    }

    /// s0 split into s2, s3; s1 and s3 merged into s4.
    fn resharded() -> Vec<ShardInfo> {
        vec![
            shard("s0", &[], true),
            shard("s1", &[], true),
            shard("s2", &["s0"], false),
            shard("s3", &["s0"], true),
            shard("s4", &["s1", "s3"], false),
        ]
    }

    #[test]
    fn a_fresh_trim_horizon_table_leases_every_shard_with_lineage() {
        let created = leases_to_create(
            &resharded(),
            &BTreeSet::new(),
            &LeaseCheckpoint::TrimHorizon,
        );
        assert_eq!(keys(&created), ["s0", "s1", "s2", "s3", "s4"]);
        assert_eq!(created[4].parents, ["s1", "s3"]);
        assert!(created
            .iter()
            .all(|l| l.checkpoint == LeaseCheckpoint::TrimHorizon));
    }

    #[test]
    fn a_fresh_latest_table_leases_only_open_shards() {
        let created = leases_to_create(&resharded(), &BTreeSet::new(), &LeaseCheckpoint::Latest);
        assert_eq!(keys(&created), ["s2", "s4"]);
        assert!(created.iter().all(|l| l.parents.is_empty()));
        assert!(created
            .iter()
            .all(|l| l.checkpoint == LeaseCheckpoint::Latest));
    }

    #[test]
    fn children_get_leases_once_their_parents_have_them_and_cleaned_parents_stay_gone() {
        let existing: BTreeSet<String> = ["s0", "s1"].iter().map(|s| s.to_string()).collect();
        let created = leases_to_create(&resharded(), &existing, &LeaseCheckpoint::Latest);
        assert_eq!(keys(&created), ["s2", "s3"], "s4 waits for s3's lease");
        assert!(created
            .iter()
            .all(|l| l.checkpoint == LeaseCheckpoint::TrimHorizon));
        // s0 and s1 finished and were deleted; their children hold leases.
        let existing: BTreeSet<String> = ["s2", "s3", "s4"].iter().map(|s| s.to_string()).collect();
        assert!(
            leases_to_create(&resharded(), &existing, &LeaseCheckpoint::TrimHorizon).is_empty()
        );
    }
}

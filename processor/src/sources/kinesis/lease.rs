//! One lease: the KCL lease-table item of a shard, with the KCL attribute names, so operators can
//! read the table with the tools they know and a KCL 2.x application's table can be taken over.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

/// KCL attribute names.
pub mod attr {
    /// Hash key: the shard id.
    pub const LEASE_KEY: &str = "leaseKey";
    /// Worker id of the owner; absent when free.
    pub const LEASE_OWNER: &str = "leaseOwner";
    /// Incremented on every renewal and every write; others watch it to detect a dead owner.
    pub const LEASE_COUNTER: &str = "leaseCounter";
    /// Sequence number or `TRIM_HORIZON` / `LATEST` / `AT_TIMESTAMP` / `SHARD_END`.
    pub const CHECKPOINT: &str = "checkpoint";
    /// KPL sub-sequence number of the checkpoint.
    pub const CHECKPOINT_SUB: &str = "checkpointSubSequenceNumber";
    /// Owner changes since the last checkpoint.
    pub const OWNER_SWITCHES: &str = "ownerSwitchesSinceCheckpoint";
    /// Parent shard ids (string set).
    pub const PARENT_SHARD_ID: &str = "parentShardId";
    /// Child shard ids (string set), written when the shard ends.
    pub const CHILD_SHARD_IDS: &str = "childShardIds";
    /// First hash key of the shard (decimal).
    pub const STARTING_HASH_KEY: &str = "startingHashKey";
    /// Last hash key of the shard (decimal).
    pub const ENDING_HASH_KEY: &str = "endingHashKey";
}

/// Orders a read position against a lease checkpoint: `Greater` when `offset` is further into
/// the shard. `None` for offsets a Kinesis shard never has (bytes, records).
pub fn compare_with_checkpoint(
    offset: &crate::position::Offset,
    checkpoint: &LeaseCheckpoint,
) -> Option<std::cmp::Ordering> {
    use crate::position::Offset;
    use std::cmp::Ordering;
    match (offset, checkpoint) {
        (Offset::Finished, LeaseCheckpoint::ShardEnd) => Some(Ordering::Equal),
        (Offset::Finished, _) => Some(Ordering::Greater),
        (_, LeaseCheckpoint::ShardEnd) => Some(Ordering::Less),
        (Offset::Sequence { .. }, checkpoint) if checkpoint.is_initial() => Some(Ordering::Greater),
        (
            Offset::Sequence {
                sequence_number: ours,
                sub_sequence_number: our_sub,
            },
            LeaseCheckpoint::Sequence {
                sequence_number: theirs,
                sub_sequence_number: their_sub,
            },
        ) => Some(compare_sequence_numbers(ours, theirs).then(our_sub.cmp(their_sub))),
        _ => None,
    }
}

/// Orders two Kinesis sequence numbers (see [`compare_sequence_numbers`]'s doc).
#[cfg(test)]
mod sequence_order_tests {
    use super::compare_sequence_numbers;
    use std::cmp::Ordering;

    #[test]
    fn sequence_numbers_order_as_numbers() {
        assert_eq!(compare_sequence_numbers("99", "100"), Ordering::Less);
        assert_eq!(compare_sequence_numbers("0100", "100"), Ordering::Equal);
        assert_eq!(compare_sequence_numbers("201", "200"), Ordering::Greater);
        let a = "49680618652175220658574588009825280700336649637527027714";
        let b = "49680618652197521403773118623670176865772799645542514706";
        assert_eq!(compare_sequence_numbers(a, b), Ordering::Less);
    }
}

/// Orders two Kinesis sequence numbers. They are decimal strings of up to 128 digits (56 in
/// practice), too long for any integer type: the shorter number (leading zeros aside) is the
/// smaller, and equal lengths compare digit by digit.
pub fn compare_sequence_numbers(a: &str, b: &str) -> std::cmp::Ordering {
    let a = a.trim_start_matches('0');
    let b = b.trim_start_matches('0');
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// Where a lease's shard has been read to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseCheckpoint {
    /// Not read yet: start at the oldest record.
    TrimHorizon,
    /// Not read yet: start at the newest record.
    Latest,
    /// Not read yet: start at the configured timestamp.
    AtTimestamp,
    /// Read to the end of a closed shard: its children may start.
    ShardEnd,
    /// Read up to and including this record (and sub-record).
    Sequence {
        /// Kinesis sequence number.
        sequence_number: String,
        /// KPL sub-sequence number.
        sub_sequence_number: u64,
    },
}

impl LeaseCheckpoint {
    /// The value of the `checkpoint` attribute.
    pub fn as_attribute(&self) -> &str {
        match self {
            LeaseCheckpoint::TrimHorizon => "TRIM_HORIZON",
            LeaseCheckpoint::Latest => "LATEST",
            LeaseCheckpoint::AtTimestamp => "AT_TIMESTAMP",
            LeaseCheckpoint::ShardEnd => "SHARD_END",
            LeaseCheckpoint::Sequence {
                sequence_number, ..
            } => sequence_number,
        }
    }

    fn parse(text: &str, sub_sequence_number: u64) -> Self {
        match text {
            "TRIM_HORIZON" => LeaseCheckpoint::TrimHorizon,
            "LATEST" => LeaseCheckpoint::Latest,
            "AT_TIMESTAMP" => LeaseCheckpoint::AtTimestamp,
            "SHARD_END" => LeaseCheckpoint::ShardEnd,
            sequence => LeaseCheckpoint::Sequence {
                sequence_number: sequence.to_owned(),
                sub_sequence_number,
            },
        }
    }

    /// True once the shard has been read to its end.
    pub fn is_shard_end(&self) -> bool {
        matches!(self, LeaseCheckpoint::ShardEnd)
    }

    /// True when no record of the shard has been checkpointed.
    pub fn is_initial(&self) -> bool {
        matches!(
            self,
            LeaseCheckpoint::TrimHorizon | LeaseCheckpoint::Latest | LeaseCheckpoint::AtTimestamp
        )
    }
}

/// A lease-table item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// Shard id.
    pub key: String,
    /// Owning worker, if any.
    pub owner: Option<String>,
    /// `leaseCounter`.
    pub counter: u64,
    /// `checkpoint` and `checkpointSubSequenceNumber`.
    pub checkpoint: LeaseCheckpoint,
    /// `ownerSwitchesSinceCheckpoint`.
    pub owner_switches: u64,
    /// Parent shards (one for a split, two for a merge).
    pub parents: Vec<String>,
    /// Child shards, once known.
    pub children: Vec<String>,
    /// The shard's hash-key range, inclusive.
    pub hash_key_range: Option<(u128, u128)>,
}

/// A lease-table item that is not a lease we can use.
#[derive(Debug, thiserror::Error)]
#[error("lease table item {key}: {reason}")]
pub struct MalformedLease {
    /// The item's `leaseKey`, or `?`.
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

impl Lease {
    /// A new, unowned lease for a shard.
    pub fn new(
        key: &str,
        checkpoint: LeaseCheckpoint,
        parents: Vec<String>,
        hash_key_range: Option<(u128, u128)>,
    ) -> Self {
        Self {
            key: key.to_owned(),
            owner: None,
            counter: 0,
            checkpoint,
            owner_switches: 0,
            parents,
            children: Vec::new(),
            hash_key_range,
        }
    }

    /// The item to `PutItem`.
    pub fn to_item(&self) -> HashMap<String, AttributeValue> {
        let mut item = HashMap::new();
        let s = |v: &str| AttributeValue::S(v.to_owned());
        let n = |v: u64| AttributeValue::N(v.to_string());
        item.insert(attr::LEASE_KEY.to_owned(), s(&self.key));
        if let Some(owner) = &self.owner {
            item.insert(attr::LEASE_OWNER.to_owned(), s(owner));
        }
        item.insert(attr::LEASE_COUNTER.to_owned(), n(self.counter));
        item.insert(
            attr::CHECKPOINT.to_owned(),
            s(self.checkpoint.as_attribute()),
        );
        let sub = match &self.checkpoint {
            LeaseCheckpoint::Sequence {
                sub_sequence_number,
                ..
            } => *sub_sequence_number,
            _ => 0,
        };
        item.insert(attr::CHECKPOINT_SUB.to_owned(), n(sub));
        item.insert(attr::OWNER_SWITCHES.to_owned(), n(self.owner_switches));
        // DynamoDB sets cannot be empty: absent means none.
        if !self.parents.is_empty() {
            item.insert(
                attr::PARENT_SHARD_ID.to_owned(),
                AttributeValue::Ss(self.parents.clone()),
            );
        }
        if !self.children.is_empty() {
            item.insert(
                attr::CHILD_SHARD_IDS.to_owned(),
                AttributeValue::Ss(self.children.clone()),
            );
        }
        if let Some((start, end)) = self.hash_key_range {
            item.insert(attr::STARTING_HASH_KEY.to_owned(), s(&start.to_string()));
            item.insert(attr::ENDING_HASH_KEY.to_owned(), s(&end.to_string()));
        }
        item
    }

    /// Reads an item; unknown attributes (KCL's `throughputKBps`, `checkpointOwner`…) are kept
    /// untouched in the table because every write updates only the attributes it names.
    pub fn from_item(item: &HashMap<String, AttributeValue>) -> Result<Self, MalformedLease> {
        let key = match item.get(attr::LEASE_KEY) {
            Some(AttributeValue::S(key)) => key.clone(),
            _ => {
                return Err(MalformedLease {
                    key: "?".to_owned(),
                    reason: "no string leaseKey".to_owned(),
                })
            }
        };
        let malformed = |reason: String| MalformedLease {
            key: key.clone(),
            reason,
        };
        let number = |name: &str| -> Result<u64, MalformedLease> {
            match item.get(name) {
                None => Ok(0),
                Some(AttributeValue::N(text)) => text
                    .parse()
                    .map_err(|_| malformed(format!("{name} is not a whole number: {text}"))),
                Some(other) => Err(malformed(format!("{name} is not a number: {other:?}"))),
            }
        };
        let string = |name: &str| -> Result<Option<String>, MalformedLease> {
            match item.get(name) {
                None | Some(AttributeValue::Null(_)) => Ok(None),
                Some(AttributeValue::S(text)) => Ok(Some(text.clone())),
                Some(other) => Err(malformed(format!("{name} is not a string: {other:?}"))),
            }
        };
        let set = |name: &str| -> Result<Vec<String>, MalformedLease> {
            match item.get(name) {
                None | Some(AttributeValue::Null(_)) => Ok(Vec::new()),
                Some(AttributeValue::Ss(values)) => {
                    let mut values = values.clone();
                    values.sort();
                    Ok(values)
                }
                Some(AttributeValue::S(value)) => Ok(vec![value.clone()]),
                Some(other) => Err(malformed(format!("{name} is not a string set: {other:?}"))),
            }
        };
        let hash = |name: &str| -> Result<Option<u128>, MalformedLease> {
            string(name)?
                .map(|text| {
                    text.parse::<u128>()
                        .map_err(|_| malformed(format!("{name} is not a 128-bit number: {text}")))
                })
                .transpose()
        };
        let checkpoint_text = string(attr::CHECKPOINT)?.unwrap_or_else(|| "TRIM_HORIZON".into());
        let hash_key_range = match (hash(attr::STARTING_HASH_KEY)?, hash(attr::ENDING_HASH_KEY)?) {
            (Some(start), Some(end)) => Some((start, end)),
            _ => None,
        };
        Ok(Self {
            owner: string(attr::LEASE_OWNER)?,
            counter: number(attr::LEASE_COUNTER)?,
            checkpoint: LeaseCheckpoint::parse(&checkpoint_text, number(attr::CHECKPOINT_SUB)?),
            owner_switches: number(attr::OWNER_SWITCHES)?,
            parents: set(attr::PARENT_SHARD_ID)?,
            children: set(attr::CHILD_SHARD_IDS)?,
            hash_key_range,
            key,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_round_trip_with_kcl_names() {
        let mut lease = Lease::new(
            "shardId-000000000002",
            LeaseCheckpoint::Sequence {
                sequence_number: "49590338271490256608559692538361571095921575989136588898"
                    .to_owned(),
                sub_sequence_number: 3,
            },
            vec!["shardId-000000000000".to_owned()],
            Some((0, u128::MAX)),
        );
        lease.owner = Some("worker-a".to_owned());
        lease.counter = 17;
        let item = lease.to_item();
        assert_eq!(
            item.get("leaseKey"),
            Some(&AttributeValue::S("shardId-000000000002".to_owned()))
        );
        assert_eq!(
            item.get("checkpointSubSequenceNumber"),
            Some(&AttributeValue::N("3".to_owned()))
        );
        assert_eq!(
            item.get("endingHashKey"),
            Some(&AttributeValue::S(u128::MAX.to_string()))
        );
        assert_eq!(Lease::from_item(&item).unwrap(), lease);
    }

    #[test]
    fn sentinels_and_missing_attributes() {
        let mut item = Lease::new("s", LeaseCheckpoint::ShardEnd, vec![], None).to_item();
        assert_eq!(
            item.get("checkpoint"),
            Some(&AttributeValue::S("SHARD_END".to_owned()))
        );
        item.remove("checkpoint");
        item.remove("leaseCounter");
        let lease = Lease::from_item(&item).unwrap();
        assert_eq!(lease.checkpoint, LeaseCheckpoint::TrimHorizon);
        assert_eq!(lease.counter, 0);
        item.insert("leaseCounter".to_owned(), AttributeValue::S("x".to_owned()));
        let err = Lease::from_item(&item).unwrap_err().to_string();
        assert!(err.contains("leaseCounter is not a number"), "{err}");
    }
}

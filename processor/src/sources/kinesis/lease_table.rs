//! The DynamoDB lease table: creation on demand and every lease write, each conditional on the
//! lease's expected `leaseCounter` (and owner), so two workers never both own a lease and a
//! worker that lost a lease can never write it again.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType, TableStatus,
};
use aws_sdk_dynamodb::Client;

use super::calls::{classify, with_retries, CallError};
use super::lease::{attr, Lease, LeaseCheckpoint};
use super::metrics::KinesisMetrics;
use crate::sinks::delivery::RetryConfig;

/// What a conditional update changes besides the counter.
#[derive(Default)]
struct Change<'a> {
    /// More `SET` clauses.
    set: &'a str,
    /// A `REMOVE` clause.
    remove: Option<&'a str>,
    /// Placeholder values.
    values: Vec<(&'a str, AttributeValue)>,
    /// Placeholder names.
    names: Vec<(&'a str, &'a str)>,
}

/// The lease table of one application.
#[derive(Clone)]
pub struct LeaseTable {
    client: Client,
    name: String,
    retry: RetryConfig,
    metrics: Arc<KinesisMetrics>,
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

impl LeaseTable {
    /// A handle on table `name`.
    pub fn new(
        client: Client,
        name: String,
        retry: RetryConfig,
        metrics: Arc<KinesisMetrics>,
    ) -> Self {
        Self {
            client,
            name,
            retry,
            metrics,
        }
    }

    /// The table's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Creates the table (hash key `leaseKey`, on-demand billing) unless it exists, and waits
    /// until it is active.
    pub async fn ensure_exists(&self) -> Result<(), CallError> {
        if self.status().await?.is_none() {
            tracing::info!(table = %self.name, "creating the lease table (on-demand billing)");
            let created = with_retries(&self.retry, "CreateTable", &self.metrics, || async {
                self.client
                    .create_table()
                    .table_name(&self.name)
                    .attribute_definitions(
                        AttributeDefinition::builder()
                            .attribute_name(attr::LEASE_KEY)
                            .attribute_type(ScalarAttributeType::S)
                            .build()
                            .map_err(|err| CallError::Fatal(err.to_string()))?,
                    )
                    .key_schema(
                        KeySchemaElement::builder()
                            .attribute_name(attr::LEASE_KEY)
                            .key_type(KeyType::Hash)
                            .build()
                            .map_err(|err| CallError::Fatal(err.to_string()))?,
                    )
                    .billing_mode(BillingMode::PayPerRequest)
                    .send()
                    .await
                    .map_err(classify)
            })
            .await;
            match created {
                Ok(_) => {}
                // Another worker created it first.
                Err(CallError::Fatal(text)) if text.contains("ResourceInUseException") => {}
                Err(err) => return Err(err),
            }
        }
        for _ in 0..600 {
            if self.status().await? == Some(TableStatus::Active) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(CallError::Fatal(format!(
            "lease table {} did not become active within 60 s",
            self.name
        )))
    }

    /// The table's status, or `None` when it does not exist.
    pub async fn status(&self) -> Result<Option<TableStatus>, CallError> {
        let described = with_retries(&self.retry, "DescribeTable", &self.metrics, || async {
            self.client
                .describe_table()
                .table_name(&self.name)
                .send()
                .await
                .map_err(classify)
        })
        .await;
        match described {
            Ok(output) => Ok(output.table().and_then(|t| t.table_status().cloned())),
            Err(CallError::NotFound(_)) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Every lease (consistent scan, all pages). Items that are not leases are logged and
    /// skipped.
    pub async fn scan(&self) -> Result<Vec<Lease>, CallError> {
        let mut leases = Vec::new();
        let mut start_key = None;
        loop {
            let page = with_retries(&self.retry, "Scan", &self.metrics, || {
                let start_key = start_key.clone();
                async move {
                    self.client
                        .scan()
                        .table_name(&self.name)
                        .consistent_read(true)
                        .set_exclusive_start_key(start_key)
                        .send()
                        .await
                        .map_err(classify)
                }
            })
            .await?;
            for item in page.items() {
                match Lease::from_item(item) {
                    Ok(lease) => leases.push(lease),
                    Err(err) => tracing::warn!(table = %self.name, "{err}; ignored"),
                }
            }
            match page.last_evaluated_key() {
                Some(key) if !key.is_empty() => start_key = Some(key.clone()),
                _ => break,
            }
        }
        leases.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(leases)
    }

    /// Creates a lease unless one exists for the shard; true when this call created it.
    pub async fn create(&self, lease: &Lease) -> Result<bool, CallError> {
        let put = with_retries(&self.retry, "PutItem", &self.metrics, || async {
            self.client
                .put_item()
                .table_name(&self.name)
                .set_item(Some(lease.to_item()))
                .condition_expression("attribute_not_exists(#key)")
                .expression_attribute_names("#key", attr::LEASE_KEY)
                .send()
                .await
                .map_err(classify)
        })
        .await;
        conditional(put)
    }

    /// An update of `lease` conditional on its counter (and owner, when `owner` is set), which
    /// also increments the counter. Returns the new counter, or `None` when the condition
    /// failed (someone else wrote the lease).
    async fn conditional_update(
        &self,
        what: &str,
        lease: &Lease,
        expected_owner: Option<&str>,
        change: Change<'_>,
    ) -> Result<Option<u64>, CallError> {
        let Change {
            set,
            remove,
            values,
            names,
        } = change;
        let next = lease.counter + 1;
        let mut update = format!(
            "SET #counter = :next{}{set}",
            if set.is_empty() { "" } else { ", " }
        );
        if let Some(remove) = remove {
            update.push_str(" REMOVE ");
            update.push_str(remove);
        }
        let mut condition = "#counter = :expected".to_owned();
        match expected_owner {
            Some(_) => condition.push_str(" AND #owner = :expected_owner"),
            None if lease.owner.is_none() => {
                condition.push_str(" AND attribute_not_exists(#owner)")
            }
            None => {}
        }
        let result = with_retries(&self.retry, what, &self.metrics, || {
            let mut request = self
                .client
                .update_item()
                .table_name(&self.name)
                .key(attr::LEASE_KEY, s(&lease.key))
                .update_expression(&update)
                .condition_expression(&condition)
                .expression_attribute_names("#counter", attr::LEASE_COUNTER)
                .expression_attribute_names("#owner", attr::LEASE_OWNER)
                .expression_attribute_values(":next", n(next))
                .expression_attribute_values(":expected", n(lease.counter));
            if let Some(owner) = expected_owner {
                request = request.expression_attribute_values(":expected_owner", s(owner));
            }
            for (name, value) in &values {
                request = request.expression_attribute_values(*name, value.clone());
            }
            for (placeholder, name) in &names {
                request = request.expression_attribute_names(*placeholder, *name);
            }
            async move { request.send().await.map_err(classify) }
        })
        .await;
        Ok(conditional(result)?.then_some(next))
    }

    /// Renews a lease this worker owns (increments the counter).
    pub async fn renew(&self, lease: &Lease, me: &str) -> Result<Option<u64>, CallError> {
        self.conditional_update("UpdateItem (renew)", lease, Some(me), Change::default())
            .await
    }

    /// Takes `lease` (expired, released or stolen) for `me`, as last seen in a scan.
    pub async fn take(&self, lease: &Lease, me: &str) -> Result<Option<u64>, CallError> {
        let set = "#owner = :me, #switches = if_not_exists(#switches, :zero) + :one";
        self.conditional_update(
            "UpdateItem (take)",
            lease,
            lease.owner.as_deref(),
            Change {
                set,
                values: vec![(":me", s(me)), (":zero", n(0)), (":one", n(1))],
                names: vec![("#switches", attr::OWNER_SWITCHES)],
                ..Change::default()
            },
        )
        .await
    }

    /// Writes a checkpoint of a lease this worker owns (children too, at `SHARD_END`).
    pub async fn checkpoint(
        &self,
        lease: &Lease,
        me: &str,
        checkpoint: &LeaseCheckpoint,
        children: &[String],
    ) -> Result<Option<u64>, CallError> {
        let sub = match checkpoint {
            LeaseCheckpoint::Sequence {
                sub_sequence_number,
                ..
            } => *sub_sequence_number,
            _ => 0,
        };
        let mut set = "#checkpoint = :checkpoint, #sub = :sub, #switches = :zero".to_owned();
        let mut values = vec![
            (":checkpoint", s(checkpoint.as_attribute())),
            (":sub", n(sub)),
            (":zero", n(0)),
        ];
        let mut names = vec![
            ("#checkpoint", attr::CHECKPOINT),
            ("#sub", attr::CHECKPOINT_SUB),
            ("#switches", attr::OWNER_SWITCHES),
        ];
        if !children.is_empty() {
            set.push_str(", #children = :children");
            values.push((":children", AttributeValue::Ss(children.to_vec())));
            names.push(("#children", attr::CHILD_SHARD_IDS));
        }
        let written = self
            .conditional_update(
                "UpdateItem (checkpoint)",
                lease,
                Some(me),
                Change {
                    set: &set,
                    values,
                    names,
                    ..Change::default()
                },
            )
            .await?;
        if written.is_some() {
            self.metrics.add_checkpoints_written(1);
        }
        Ok(written)
    }

    /// Clears the owner of a lease this worker owns, so another worker takes it at once.
    pub async fn release(&self, lease: &Lease, me: &str) -> Result<Option<u64>, CallError> {
        self.conditional_update(
            "UpdateItem (release)",
            lease,
            Some(me),
            Change {
                remove: Some("#owner"),
                ..Change::default()
            },
        )
        .await
    }

    /// Deletes a finished lease (its checkpoint must still be `SHARD_END`).
    pub async fn delete_finished(&self, key: &str) -> Result<bool, CallError> {
        let deleted = with_retries(&self.retry, "DeleteItem", &self.metrics, || async {
            self.client
                .delete_item()
                .table_name(&self.name)
                .key(attr::LEASE_KEY, s(key))
                .condition_expression("#checkpoint = :end")
                .expression_attribute_names("#checkpoint", attr::CHECKPOINT)
                .expression_attribute_values(":end", s("SHARD_END"))
                .send()
                .await
                .map_err(classify)
        })
        .await;
        conditional(deleted)
    }
}

/// `Ok(true)` for success, `Ok(false)` for a failed condition.
fn conditional<T>(result: Result<T, CallError>) -> Result<bool, CallError> {
    match result {
        Ok(_) => Ok(true),
        Err(CallError::ConditionFailed) => Ok(false),
        Err(err) => Err(err),
    }
}

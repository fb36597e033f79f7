//! What every remote sink (Timestream, InfluxDB, SNS, S3) shares: the retry policy with its
//! bounded budget, the per-sink delivery metrics, and the undelivered log where outputs go, with
//! their reason, when a service rejects them for good or the retry budget runs out — never a
//! silent drop.

mod metrics;
mod retry;
mod undelivered;

pub use metrics::{DeliveryMetrics, MetricsSnapshot};
pub use retry::{Backoff, RetryConfig};
pub use undelivered::UndeliveredLog;

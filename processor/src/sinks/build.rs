//! Opens the sinks a config enables, in a fixed order (their names key the resume tokens).

use std::sync::Arc;

use super::dead_letter::{DeadLetterLines, DeadLetterSink};
use super::delivery::DeliveryMetrics;
use super::influxdb::InfluxDbSink;
use super::ndjson::{NdjsonSink, OutputLines};
use super::s3_dead_letter::S3DeadLetterSink;
use super::sns::SnsSink;
use super::sqlite::SqliteSink;
use super::timestream::TimestreamSink;
use super::{Sink, SinkError};
use crate::config::{Config, DeadLetterTarget};

/// The opened sinks and the delivery metrics of the remote ones.
pub struct OpenedSinks {
    /// Every sink, the dead-letter sink last.
    pub sinks: Vec<Box<dyn Sink>>,
    /// (sink name, metrics) of each remote sink.
    pub delivery: Vec<(String, Arc<DeliveryMetrics>)>,
}

impl OpenedSinks {
    fn add_remote(&mut self, sink: impl Sink, metrics: Arc<DeliveryMetrics>) {
        self.delivery.push((sink.name().to_owned(), metrics));
        self.sinks.push(Box::new(sink));
    }
}

/// Opens every enabled sink; with `create_tables`, creates the remote databases and tables
/// they write to first. Must run inside the Tokio runtime the remote sinks will use.
pub async fn open_sinks(config: &Config, create_tables: bool) -> Result<OpenedSinks, SinkError> {
    let mut opened = OpenedSinks {
        sinks: Vec::new(),
        delivery: Vec::new(),
    };
    if config.sinks.sqlite.enabled {
        let sqlite = &config.sinks.sqlite;
        opened.sinks.push(Box::new(SqliteSink::open_with_cache(
            &sqlite.path,
            sqlite.batch_rows,
            sqlite.cache_mib,
        )?));
    }
    if config.sinks.ndjson.enabled {
        opened.sinks.push(Box::new(NdjsonSink::open(
            &config.sinks.ndjson.path,
            OutputLines,
        )?));
    }
    if config.sinks.influxdb.enabled {
        let metrics = Arc::new(DeliveryMetrics::default());
        let sink = InfluxDbSink::open(&config.sinks.influxdb, Arc::clone(&metrics))?;
        if create_tables {
            sink.create_database().await?;
        }
        opened.add_remote(sink, metrics);
    }
    if config.sinks.timestream.enabled {
        let metrics = Arc::new(DeliveryMetrics::default());
        let sink = TimestreamSink::open(
            &config.sinks.timestream,
            &config.aws,
            create_tables,
            Arc::clone(&metrics),
        )
        .await?;
        opened.add_remote(sink, metrics);
    }
    if config.sinks.sns.enabled {
        let metrics = Arc::new(DeliveryMetrics::default());
        let sink = SnsSink::open(&config.sinks.sns, &config.aws, Arc::clone(&metrics)).await?;
        opened.add_remote(sink, metrics);
    }
    match config.dead_letter.target {
        DeadLetterTarget::File => opened.sinks.push(Box::new(DeadLetterSink::open(
            &config.dead_letter.path,
            DeadLetterLines,
        )?)),
        DeadLetterTarget::S3 => {
            let metrics = Arc::new(DeliveryMetrics::default());
            let sink =
                S3DeadLetterSink::open(&config.dead_letter.s3, &config.aws, Arc::clone(&metrics))
                    .await?;
            opened.add_remote(sink, metrics);
        }
    }
    Ok(opened)
}

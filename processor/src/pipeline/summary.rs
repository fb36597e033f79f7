//! The final summary and the progress bar.

use std::fmt;
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::counters::PipelineCounters;
use super::source_task::SourceEnd;

/// What a run did, printed at the end.
#[derive(Debug)]
pub struct RunReport {
    /// Why reading stopped.
    pub end: SourceEnd,
    /// Checkpoint the run resumed from.
    pub resumed_from: Option<u64>,
    /// Source description.
    pub source: String,
    /// (sink name, destination) pairs.
    pub outputs: Vec<(String, String)>,
    /// Delivery counters of each remote sink.
    pub delivery: Vec<(String, crate::sinks::delivery::MetricsSnapshot)>,
    /// The Kinesis source's counters.
    pub kinesis: Option<crate::sources::kinesis::metrics::KinesisMetricsSnapshot>,
    /// State store location.
    pub state: String,
    /// Final counters.
    pub counters: Arc<PipelineCounters>,
    /// Wall-clock duration.
    pub elapsed: Duration,
}

impl RunReport {
    /// Records decoded per second of wall clock.
    pub fn records_per_second(&self) -> f64 {
        let decoded = PipelineCounters::get(&self.counters.records_decoded) as f64;
        decoded / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn output(&self, name: &str) -> Option<&str> {
        self.outputs
            .iter()
            .find(|(sink, _)| sink == name)
            .map(|(_, place)| place.as_str())
    }
}

impl fmt::Display for RunReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.counters;
        let get = PipelineCounters::get;
        let ended = match self.end {
            SourceEnd::EndOfInput => "end of input",
            SourceEnd::Shutdown => "shutdown requested (state kept for the next start)",
        };
        writeln!(f, "fleetstream run finished: {ended}")?;
        writeln!(f, "  source          {}", self.source)?;
        if let Some(id) = self.resumed_from {
            writeln!(f, "  resumed from    checkpoint {id} in {}", self.state)?;
            let nothing_read = PipelineCounters::get(&c.progress_units) == 0;
            if nothing_read && self.end == SourceEnd::EndOfInput {
                writeln!(
                    f,
                    "  note            the saved state says this input was already processed; \
                     run with --fresh to process it again"
                )?;
            }
        }
        writeln!(
            f,
            "  records         {} decoded, {} rejected, {} late, {} with dropped fields",
            get(&c.records_decoded),
            get(&c.records_rejected),
            get(&c.records_late),
            get(&c.records_with_field_issues)
        )?;
        writeln!(
            f,
            "  outputs         {} rollups, {} alert updates, {} detector events, {} dead letters",
            get(&c.rollups),
            get(&c.alerts),
            get(&c.detector_events),
            get(&c.dead_letters)
        )?;
        if get(&c.anomalies) > 0 || get(&c.anomaly_models_evicted) > 0 {
            writeln!(
                f,
                "  anomalies       {} rows written, {} alerts; anomaly models: {} in memory, {} evictions",
                get(&c.anomalies),
                get(&c.anomaly_alerts),
                get(&c.anomaly_models_resident),
                get(&c.anomaly_models_evicted)
            )?;
        }
        writeln!(
            f,
            "  throughput      {:.0} records/s over {:.1} s ({} checkpoints)",
            self.records_per_second(),
            self.elapsed.as_secs_f64(),
            get(&c.checkpoints)
        )?;
        if let Some(kinesis) = &self.kinesis {
            writeln!(f, "  kinesis         {kinesis}")?;
        }
        for (name, place) in &self.outputs {
            writeln!(f, "  {name:<15} {place}")?;
        }
        for (name, metrics) in &self.delivery {
            writeln!(
                f,
                "  {name:<15} {} written, {} retried, {} undelivered, {} superseded, rejected {:?}, held back {:?}; {} calls, mean {:.1} ms, max {:.1} ms",
                metrics.written,
                metrics.retried,
                metrics.undelivered,
                metrics.superseded,
                metrics.rejected,
                metrics.held_back,
                metrics.calls,
                metrics.mean_call_ms,
                metrics.max_call_ms
            )?;
        }
        writeln!(f, "  state           {}", self.state)?;
        if let Some(db) = self.output("sqlite") {
            writeln!(f)?;
            writeln!(f, "Try:")?;
            writeln!(
                f,
                "  sqlite3 -header -column {db} \"SELECT vehicle_id, rule, severity, status, \
                 datetime(start_time_ms/1000,'unixepoch') AS started, round(trigger_max,1) AS peak \
                 FROM alerts ORDER BY start_time_ms LIMIT 10;\""
            )?;
            writeln!(
                f,
                "  sqlite3 -header -column {db} \"SELECT datetime(window_start_ms/1000,'unixepoch') AS minute, \
                 signal, count, round(mean,2) AS mean, round(stddev,2) AS stddev, min, max FROM rollups \
                 WHERE rollup = 'signal_1m' AND vehicle_id = (SELECT min(vehicle_id) FROM rollups) \
                 ORDER BY window_start_ms, signal LIMIT 20;\""
            )?;
            if get(&c.anomalies) > 0 {
                writeln!(
                    f,
                    "  sqlite3 -header -column {db} \"SELECT vehicle_id, model, datetime(time_ms/1000,'unixepoch') AS at, \
                     round(score,2) AS score, round(grade,2) AS grade, explanation FROM anomalies \
                     WHERE grade > 0 ORDER BY grade DESC LIMIT 10;\""
                )?;
            }
        }
        Ok(())
    }
}

/// A progress bar on stderr fed from the counters; hidden when stderr is not a terminal.
pub struct Progress {
    bar: ProgressBar,
    task: tokio::task::JoinHandle<()>,
}

impl Progress {
    /// Stops and clears the bar.
    pub fn finish(self) {
        self.task.abort();
        self.bar.finish_and_clear();
    }
}

/// Starts the progress bar (a spinner when the input size is unknown).
pub fn spawn_progress(size_hint: Option<u64>, counters: Arc<PipelineCounters>) -> Progress {
    let bar = match size_hint {
        Some(total) => ProgressBar::new(total),
        None => ProgressBar::new_spinner(),
    };
    if std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::stderr_with_hz(5));
    } else {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    let template = if size_hint.is_some() {
        "{spinner} [{elapsed_precise}] {wide_bar} {percent:>3}% {msg}"
    } else {
        "{spinner} [{elapsed_precise}] {msg}"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    let task_bar = bar.clone();
    let task = tokio::spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_millis(200));
        loop {
            ticker.tick().await;
            task_bar.set_position(PipelineCounters::get(&counters.progress_units));
            task_bar.set_message(format!(
                "{} records, {} rollups, {} alerts, {} dead letters, {} open windows",
                PipelineCounters::get(&counters.records_decoded),
                PipelineCounters::get(&counters.rollups),
                PipelineCounters::get(&counters.alerts),
                PipelineCounters::get(&counters.dead_letters),
                PipelineCounters::get(&counters.open_window_entries),
            ));
        }
    });
    Progress { bar, task }
}

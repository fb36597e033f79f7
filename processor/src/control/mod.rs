//! Operator commands into a running service: `fleetstream alarms …` writes a row to the
//! `alarm_commands` table of the SQLite output; the service polls it about every second, hands
//! the commands to the operators, and marks them applied. Commands act on the alarm at the
//! pipeline's current event time.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use models::detector::AlarmCommand;
use rusqlite::{params, Connection};

/// A command for one vehicle's alarm of one model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedCommand {
    /// Alarm model name.
    pub model: String,
    /// Vehicle.
    pub vehicle_id: String,
    /// What to do (snooze carries its length; the operators turn it into an end time).
    pub command: CommandKind,
}

/// The commands, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandKind {
    /// Acknowledge.
    Acknowledge,
    /// Snooze for this many milliseconds of event time.
    Snooze(i64),
    /// Disable.
    Disable,
    /// Enable.
    Enable,
    /// Reset.
    Reset,
}

impl CommandKind {
    /// The stored name.
    pub fn name(self) -> &'static str {
        match self {
            CommandKind::Acknowledge => "acknowledge",
            CommandKind::Snooze(_) => "snooze",
            CommandKind::Disable => "disable",
            CommandKind::Enable => "enable",
            CommandKind::Reset => "reset",
        }
    }

    fn parse(name: &str, snooze_ms: Option<i64>) -> Option<Self> {
        Some(match name {
            "acknowledge" => CommandKind::Acknowledge,
            "snooze" => CommandKind::Snooze(snooze_ms.unwrap_or(0)),
            "disable" => CommandKind::Disable,
            "enable" => CommandKind::Enable,
            "reset" => CommandKind::Reset,
            _ => return None,
        })
    }

    /// The engine command at event time `now_ms`.
    pub fn at(self, now_ms: i64) -> AlarmCommand {
        match self {
            CommandKind::Acknowledge => AlarmCommand::Acknowledge,
            CommandKind::Snooze(ms) => AlarmCommand::Snooze {
                until_ms: now_ms.saturating_add(ms),
            },
            CommandKind::Disable => AlarmCommand::Disable,
            CommandKind::Enable => AlarmCommand::Enable,
            CommandKind::Reset => AlarmCommand::Reset,
        }
    }
}

/// Commands waiting for the operators.
pub type CommandQueue = Arc<Mutex<Vec<QueuedCommand>>>;

/// Writes a command for a running service (the `alarms` CLI).
pub fn submit(
    db: &Path,
    model: &str,
    vehicle_id: &str,
    command: CommandKind,
) -> rusqlite::Result<i64> {
    let connection = Connection::open(db)?;
    connection.busy_timeout(Duration::from_secs(10))?;
    let snooze_ms = match command {
        CommandKind::Snooze(ms) => Some(ms),
        _ => None,
    };
    connection.execute(
        "INSERT INTO alarm_commands (model, vehicle_id, command, snooze_ms, created_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            model,
            vehicle_id,
            command.name(),
            snooze_ms,
            crate::pipeline::wall_clock_ms()
        ],
    )?;
    Ok(connection.last_insert_rowid())
}

/// Moves unapplied commands from the database into `queue` and marks them applied.
pub fn poll_once(db: &Path, queue: &CommandQueue) -> rusqlite::Result<usize> {
    let mut connection = Connection::open(db)?;
    connection.busy_timeout(Duration::from_secs(5))?;
    let transaction = connection.transaction()?;
    let rows: Vec<(i64, String, String, String, Option<i64>)> = {
        let mut statement = transaction.prepare(
            "SELECT id, model, vehicle_id, command, snooze_ms FROM alarm_commands
             WHERE applied_at_ms IS NULL ORDER BY id",
        )?;
        let rows = statement.query_map([], |row| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
            ))
        })?;
        rows.collect::<Result<_, _>>()?
    };
    let now = crate::pipeline::wall_clock_ms();
    let mut taken = Vec::new();
    for (id, model, vehicle_id, name, snooze_ms) in rows {
        transaction.execute(
            "UPDATE alarm_commands SET applied_at_ms = ?1 WHERE id = ?2",
            params![now, id],
        )?;
        match CommandKind::parse(&name, snooze_ms) {
            Some(command) => taken.push(QueuedCommand {
                model,
                vehicle_id,
                command,
            }),
            None => tracing::warn!(id, command = %name, "unknown alarm command ignored"),
        }
    }
    transaction.commit()?;
    let count = taken.len();
    if let Ok(mut pending) = queue.lock() {
        pending.extend(taken);
    }
    Ok(count)
}

/// Polls `db` every `interval` until cancelled (spawned by the pipeline when alarms run).
pub async fn run_control(db: PathBuf, queue: CommandQueue, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    loop {
        ticker.tick().await;
        let db = db.clone();
        let queue = Arc::clone(&queue);
        match tokio::task::spawn_blocking(move || poll_once(&db, &queue)).await {
            Ok(Ok(0)) => {}
            Ok(Ok(count)) => tracing::info!(count, "alarm commands received"),
            Ok(Err(err)) => tracing::debug!(error = %err, "alarm command poll failed"),
            Err(err) => tracing::warn!(error = %err, "alarm command poll task failed"),
        }
    }
}

//! Loading: embedded default or file → `FLEETSTREAM_…` environment overrides → typed config →
//! validation, with every problem reported at once and named by its key path.

use std::fmt;
use std::path::Path;

use super::Config;

/// The embedded default configuration (`config/local.toml`), used when no `--config` is given.
pub const EMBEDDED_DEFAULT: &str = include_str!("../../../config/local.toml");

/// Prefix of environment overrides: `FLEETSTREAM_SINKS__SQLITE__PATH=/data/f.db` sets
/// `sinks.sqlite.path` (sections separated by a double underscore, names case-insensitive).
pub const ENV_PREFIX: &str = "FLEETSTREAM_";

/// One problem with the configuration, located by key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// Dotted key path (`rollups.window`, `rules[2].when`); empty for the whole file.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "`{}`: {}", self.path, self.message)
        }
    }
}

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// File path.
        path: String,
        /// I/O error.
        source: std::io::Error,
    },
    /// The configuration is invalid; every problem is listed.
    #[error("invalid configuration ({origin}):\n{}", list(.problems))]
    Invalid {
        /// Where the configuration came from.
        origin: String,
        /// Every problem found.
        problems: Vec<ConfigProblem>,
    },
}

fn list(problems: &[ConfigProblem]) -> String {
    problems
        .iter()
        .map(|problem| format!("  - {problem}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Loads `path`, or the embedded default when `None`, then applies environment overrides.
pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
    let env: Vec<(String, String)> = std::env::vars().collect();
    match path {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.display().to_string(),
                source,
            })?;
            parse_in(&text, &path.display().to_string(), &env, path.parent())
        }
        None => parse(EMBEDDED_DEFAULT, "embedded default config/local.toml", &env),
    }
}

/// Loads a file without environment overrides (for `validate-config` and tests).
pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse_in(&text, &path.display().to_string(), &[], path.parent())
}

/// The embedded default without environment overrides.
pub fn load_embedded_default() -> Result<Config, ConfigError> {
    parse(EMBEDDED_DEFAULT, "embedded default config/local.toml", &[])
}

/// Parses TOML text, applies `env` overrides and validates.
pub fn parse(text: &str, origin: &str, env: &[(String, String)]) -> Result<Config, ConfigError> {
    parse_in(text, origin, env, None)
}

/// Like [`parse`], with model paths resolved against `base` (the config file's directory).
fn parse_in(
    text: &str,
    origin: &str,
    env: &[(String, String)],
    base: Option<&Path>,
) -> Result<Config, ConfigError> {
    let invalid = |problems: Vec<ConfigProblem>| ConfigError::Invalid {
        origin: origin.to_owned(),
        problems,
    };
    let mut table: toml::Table = toml::from_str(text).map_err(|err| {
        invalid(vec![ConfigProblem {
            path: String::new(),
            message: format!("not valid TOML: {}", err.message()),
        }])
    })?;
    let mut problems = apply_env_overrides(&mut table, env);
    let config: Option<Config> = match serde_path_to_error::deserialize(toml::Value::Table(table)) {
        Ok(mut config) => {
            if let Some(base) = base {
                Config::resolve_model_paths(&mut config, base);
            }
            Some(config)
        }
        Err(err) => {
            let path = err.path().to_string();
            let message = err.into_inner().message().to_owned();
            problems.push(ConfigProblem {
                path: if path == "." { String::new() } else { path },
                message,
            });
            None
        }
    };
    if let Some(config) = &config {
        problems.extend(config.problems());
    }
    match config {
        Some(config) if problems.is_empty() => Ok(config),
        _ => Err(invalid(problems)),
    }
}

/// Sets `keys` (a path) to `value`, creating tables on the way; `Err` names a non-table parent.
fn insert_path(table: &mut toml::Table, keys: &[String], value: toml::Value) -> Result<(), String> {
    match keys {
        [] => Ok(()),
        [last] => {
            table.insert(last.clone(), value);
            Ok(())
        }
        [first, rest @ ..] => match table
            .entry(first.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        {
            toml::Value::Table(inner) => insert_path(inner, rest, value),
            _ => Err(first.clone()),
        },
    }
}

/// Applies `FLEETSTREAM_A__B=value` overrides; values parse as TOML literals when they can
/// (`10`, `true`, `"x"`, `[1, 2]`) and are taken as strings otherwise. Every config key lives in
/// a section, so only names with a `__` are overrides: `FLEETSTREAM_CONFIG`, `FLEETSTREAM_LOG`
/// and other single-word variables belong to the command line or to tools.
fn apply_env_overrides(table: &mut toml::Table, env: &[(String, String)]) -> Vec<ConfigProblem> {
    let mut problems = Vec::new();
    let mut overrides: Vec<&(String, String)> = env
        .iter()
        .filter(|(name, _)| {
            name.strip_prefix(ENV_PREFIX)
                .is_some_and(|keys| keys.contains("__"))
        })
        .collect();
    overrides.sort();
    for (name, raw) in overrides {
        let keys: Vec<String> = name[ENV_PREFIX.len()..]
            .split("__")
            .map(str::to_ascii_lowercase)
            .collect();
        if keys.iter().any(String::is_empty) {
            problems.push(ConfigProblem {
                path: name.clone(),
                message: "environment override has an empty key segment".to_owned(),
            });
            continue;
        }
        let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
            .ok()
            .and_then(|mut parsed| parsed.remove("v"))
            .unwrap_or_else(|| toml::Value::String(raw.clone()));
        if let Err(parent) = insert_path(table, &keys, value) {
            problems.push(ConfigProblem {
                path: keys.join("."),
                message: format!("{name} overrides inside `{parent}`, which is not a table"),
            });
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn embedded_default_is_valid() {
        let config = load_embedded_default().unwrap();
        assert_eq!(config.source.kind, super::super::SourceKind::Simulator);
        assert!(!config.rules.is_empty());
    }

    #[test]
    fn environment_overrides_nested_keys() {
        let config = parse(
            EMBEDDED_DEFAULT,
            "test",
            &env(&[
                ("FLEETSTREAM_SINKS__SQLITE__PATH", "/tmp/x.db"),
                ("FLEETSTREAM_SOURCE__SIMULATOR__VEHICLES", "7"),
                ("FLEETSTREAM_TIME__MAX_OUT_OF_ORDERNESS", "30s"),
                ("FLEETSTREAM_CONFIG", "config/files.toml"),
                ("FLEETSTREAM_LOG", "debug"),
                ("FLEETSTREAM_PYENV", "/var/tmp/venv"),
                ("OTHER_VAR", "ignored"),
            ]),
        )
        .unwrap();
        assert_eq!(
            config.sinks.sqlite.path,
            std::path::PathBuf::from("/tmp/x.db")
        );
        assert_eq!(config.source.simulator.spec.vehicles, 7);
        assert_eq!(config.time.max_out_of_orderness.ms(), 30_000);
    }

    #[test]
    fn unknown_keys_and_bad_types_name_their_path() {
        let err = parse(
            "[source]\nkind = \"simulator\"\n[[rollups]]\nname = \"r\"\nwindw = \"1m\"\n",
            "t",
            &[],
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("`rollups[0].windw`"), "{text}");
        assert!(text.contains("unknown field `windw`"), "{text}");

        let err = parse(
            "[source]\nkind = \"simulator\"\n[[rollups]]\nname = \"r\"\nwindow = { kind = \"tumbling\", size = \"1 minute\" }\n",
            "t",
            &[],
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("`rollups[0].window`: invalid duration \"1 minute\""),
            "{err}"
        );
    }

    #[test]
    fn a_handoff_store_needs_a_bucket() {
        let text = "[source]\nkind = \"kinesis\"\n[source.kinesis]\nstream_name = \"s\"\nhandoff = { prefix = \"lanes/\" }\n[time]\nidle_timeout = \"30s\"\n";
        let err = parse(text, "t", &[]).unwrap_err().to_string();
        assert!(err.contains("source.kinesis.handoff.bucket"), "{err}");
        let ok = text.replace("{ prefix", "{ bucket = \"b\", prefix");
        let config = parse(&ok, "t", &[]).expect("valid");
        let handoff = config.source.kinesis.handoff.expect("set");
        assert_eq!(
            (handoff.bucket.as_str(), handoff.prefix.as_str()),
            ("b", "lanes/")
        );
    }

    #[test]
    fn decode_workers_default_to_one_per_core_and_keep_an_explicit_count() {
        let base = "[source]\nkind = \"file\"\npath = \"in.ndjson\"\n";
        let auto = parse(base, "t", &[]).unwrap();
        assert_eq!(auto.pipeline.decode_workers, 0);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(
            auto.pipeline.decode_worker_count(),
            cores.clamp(1, crate::config::MAX_AUTO_DECODE_WORKERS)
        );
        let three = parse(&format!("{base}[pipeline]\ndecode_workers = 3\n"), "t", &[]).unwrap();
        assert_eq!(three.pipeline.decode_worker_count(), 3);
        let err = parse(
            &format!("{base}[pipeline]\ndecode_workers = 65\n"),
            "t",
            &[],
        )
        .unwrap_err();
        assert!(err.to_string().contains("pipeline.decode_workers"), "{err}");
    }

    #[test]
    fn every_validation_problem_is_reported_at_once() {
        let text = r#"
[source]
kind = "file"
[[rollups]]
name = "r"
window = { kind = "tumbling", size = "0s" }
[time]
max_out_of_orderness = "0s"
[pipeline]
sink_channel_capacity = 0
[sinks.sqlite]
cache_mib = 0
[[rules]]
name = "r"
severity = "critical"
when = "speed >> 3"
"#;
        let err = parse(text, "t", &[]).unwrap_err();
        let ConfigError::Invalid { problems, .. } = err else {
            panic!("{err}")
        };
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert!(paths.contains(&"source.path"), "{paths:?}");
        assert!(paths.contains(&"rollups[0].window"), "{paths:?}");
        assert!(
            paths.contains(&"pipeline.sink_channel_capacity"),
            "{paths:?}"
        );
        assert!(paths.contains(&"rules[0].when"), "{paths:?}");
        assert!(paths.contains(&"sinks.sqlite.cache_mib"), "{paths:?}");
    }
}

//! `fleetstream score`: offline scoring of a CSV time series, for tuning forest parameters.
//!
//! Rows are scored in file order with the same [`AnomalyModel`] the pipeline runs per vehicle
//! (scaling, forest, grade), so what a user tunes here is what the service will do.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use models::forest::{
    kda_explanation, AnomalyModel, AnomalyModelConfig, Explanations, ForestConfig, GraderConfig,
};

use crate::cli::ScoreArgs;

/// Why scoring could not run or finish.
#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    /// The arguments do not make a valid model or do not match the file.
    #[error("{0}")]
    Arguments(String),
    /// The input or output could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What failed.
        source: io::Error,
    },
    /// The CSV is malformed (a row with the wrong number of fields, bad UTF-8).
    #[error("{path}: {source}")]
    Csv {
        /// The file.
        path: String,
        /// What failed, with the line.
        source: csv::Error,
    },
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScoreSummary {
    /// Data rows scored.
    pub rows: u64,
    /// Values imputed (empty or not a number).
    pub imputed: u64,
    /// Rows whose grade was above 0.
    pub graded: u64,
}

/// Runs `fleetstream score`; exit 2 on bad arguments, 1 on I/O or CSV errors.
pub fn score(args: &ScoreArgs) -> ExitCode {
    let started = Instant::now();
    match score_csv(args) {
        Ok(summary) => {
            let seconds = started.elapsed().as_secs_f64();
            eprintln!(
                "scored {} rows in {seconds:.2} s ({:.0} rows/s); {} values imputed; {} rows graded above 0",
                summary.rows,
                summary.rows as f64 / seconds.max(1e-9),
                summary.imputed,
                summary.graded
            );
            ExitCode::SUCCESS
        }
        Err(ScoreError::Arguments(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(super::EXIT_CONFIG)
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(super::EXIT_FAILED)
        }
    }
}

/// Scores `args.input` into `args.output`.
pub fn score_csv(args: &ScoreArgs) -> Result<ScoreSummary, ScoreError> {
    let input_name = args.input.display().to_string();
    let csv_error = |source| ScoreError::Csv {
        path: input_name.clone(),
        source,
    };
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(open_input(&args.input)?);
    let header: Vec<String> = reader
        .headers()
        .map_err(csv_error)?
        .iter()
        .map(str::to_owned)
        .collect();
    let (time_column, value_columns) = choose_columns(&header, args)?;
    let names: Vec<&str> = value_columns.iter().map(|&c| header[c].as_str()).collect();
    let config = model_config(args, value_columns.len())?;
    let mut model = AnomalyModel::new(config);

    let output_name = args.output.display().to_string();
    let io_error = |source| ScoreError::Io {
        path: output_name.clone(),
        source,
    };
    let mut writer = csv::Writer::from_writer(open_output(&args.output).map_err(io_error)?);
    let mut out_header = vec![
        header[time_column].as_str(),
        "anomaly_score",
        "grade",
        "confidence",
        "warming_up",
    ];
    if !args.no_explanation {
        out_header.push("explanation");
    }
    writer
        .write_record(&out_header)
        .map_err(|e| ScoreError::Csv {
            path: output_name.clone(),
            source: e,
        })?;

    let mut summary = ScoreSummary::default();
    let mut values = vec![None; value_columns.len()];
    let mut row = csv::StringRecord::new();
    while reader.read_record(&mut row).map_err(csv_error)? {
        summary.rows += 1;
        for (value, &column) in values.iter_mut().zip(&value_columns) {
            *value = row.get(column).and_then(|text| text.parse::<f64>().ok());
        }
        let explain = if args.no_explanation {
            Explanations::None
        } else {
            Explanations::All
        };
        let result = model.process(&values, explain);
        summary.imputed += u64::from(result.imputed);
        if result.grade.grade > 0.0 {
            summary.graded += 1;
        }
        let mut fields = vec![
            row.get(time_column).unwrap_or_default().to_owned(),
            format!("{:.6}", result.score),
            format!("{:.4}", result.grade.grade),
            format!("{:.4}", result.grade.confidence),
            result.warming_up.to_string(),
        ];
        if !args.no_explanation {
            fields.push(
                result
                    .attribution
                    .as_ref()
                    .map(|attribution| kda_explanation(&names, attribution).to_string())
                    .unwrap_or_default(),
            );
        }
        writer.write_record(&fields).map_err(|e| ScoreError::Csv {
            path: output_name.clone(),
            source: e,
        })?;
    }
    writer.flush().map_err(io_error)?;
    Ok(summary)
}

/// The time column and the value columns, by name or by the documented defaults.
fn choose_columns(header: &[String], args: &ScoreArgs) -> Result<(usize, Vec<usize>), ScoreError> {
    let find = |name: &str| {
        header.iter().position(|h| h == name).ok_or_else(|| {
            ScoreError::Arguments(format!(
                "no column named {name:?}; the header has {}",
                header.join(", ")
            ))
        })
    };
    let time_column = match &args.time_column {
        Some(name) => find(name)?,
        None => ["timestamp", "time", "ts"]
            .iter()
            .find_map(|name| header.iter().position(|h| h == name))
            .unwrap_or(0),
    };
    let value_columns: Vec<usize> = if args.value_columns.is_empty() {
        (0..header.len()).filter(|&c| c != time_column).collect()
    } else {
        args.value_columns
            .iter()
            .map(|name| find(name))
            .collect::<Result<_, _>>()?
    };
    if value_columns.is_empty() {
        return Err(ScoreError::Arguments(
            "the CSV has no value column to score besides the time column".to_owned(),
        ));
    }
    Ok((time_column, value_columns))
}

/// The model the arguments describe, or every problem with them.
fn model_config(args: &ScoreArgs, signals: usize) -> Result<AnomalyModelConfig, ScoreError> {
    let forest = ForestConfig {
        input_dimensions: signals,
        num_trees: args.trees,
        sample_size: args.sample_size,
        shingle_size: args.shingle_size,
        time_decay: args
            .time_decay
            .unwrap_or(1.0 / (10.0 * args.sample_size.max(1) as f64)),
        seed: args.seed,
    };
    let mut problems = forest.problems();
    if !(args.z.is_finite() && args.z >= 0.0) {
        problems.push("z must be a finite number ≥ 0".to_owned());
    }
    if !problems.is_empty() {
        return Err(ScoreError::Arguments(format!(
            "invalid forest parameters: {}",
            problems.join("; ")
        )));
    }
    Ok(AnomalyModelConfig {
        grader: GraderConfig {
            z: args.z,
            horizon: 10 * args.sample_size as u64,
            ..GraderConfig::default()
        },
        forest,
        normalize: !args.no_normalize,
    })
}

fn open_input(path: &Path) -> Result<Box<dyn Read>, ScoreError> {
    if path.as_os_str() == "-" {
        return Ok(Box::new(io::stdin().lock()));
    }
    let file = File::open(path).map_err(|source| ScoreError::Io {
        path: path.display().to_string(),
        source,
    })?;
    Ok(Box::new(BufReader::with_capacity(1 << 16, file)))
}

fn open_output(path: &Path) -> io::Result<Box<dyn Write>> {
    if path.as_os_str() == "-" {
        return Ok(Box::new(BufWriter::new(io::stdout().lock())));
    }
    Ok(Box::new(BufWriter::with_capacity(
        1 << 16,
        File::create(path)?,
    )))
}

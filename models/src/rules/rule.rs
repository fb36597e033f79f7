//! Threshold rule configuration and its validation.

use serde::{Deserialize, Serialize};

use super::condition::{parse_condition, Condition};

/// How serious an alert is; routes alerts and sets their subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing.
    Info,
    /// Needs attention soon.
    Warning,
    /// Needs attention now.
    Critical,
}

impl Severity {
    /// Lower-case name as stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// A threshold rule as written in the config file:
///
/// ```toml
/// [[rules]]
/// name = "coolant_overheat"
/// severity = "critical"
/// when = "coolant_temp_c > 110 for 2m"
/// clear_when = "coolant_temp_c < 95 for 5m"   # optional
/// ```
///
/// The alert fires when `when` has held continuously (on every sample of the signal, in event
/// time) for its duration, and resolves when `clear_when` has held for its duration — by default
/// as soon as `when`'s comparison is false.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Unique rule name, stored with each alert.
    pub name: String,
    /// Alert severity.
    pub severity: Severity,
    /// Trigger condition: `signal op number [for duration]`.
    pub when: String,
    /// Optional resolve condition on the same signal (hysteresis).
    #[serde(default)]
    pub clear_when: Option<String>,
}

/// A validated rule, ready to evaluate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThresholdRule {
    /// Rule name.
    pub name: String,
    /// Alert severity.
    pub severity: Severity,
    /// Trigger condition.
    pub when: Condition,
    /// Resolve condition (same signal).
    pub clear_when: Option<Condition>,
}

impl RuleSpec {
    /// Parses and checks the rule; errors carry the key (`when`, `clear_when`) and position.
    pub fn compile(&self) -> Result<ThresholdRule, Vec<(String, String)>> {
        let mut problems = Vec::new();
        if self.name.trim().is_empty() {
            problems.push(("name".to_owned(), "must not be empty".to_owned()));
        }
        let when = parse_condition(&self.when)
            .map_err(|err| problems.push(("when".to_owned(), err.to_string())))
            .ok();
        let clear_when = match &self.clear_when {
            None => None,
            Some(text) => match parse_condition(text) {
                Ok(condition) => Some(condition),
                Err(err) => {
                    problems.push(("clear_when".to_owned(), err.to_string()));
                    None
                }
            },
        };
        if let (Some(when), Some(clear)) = (&when, &clear_when) {
            if clear.signal != when.signal {
                problems.push((
                    "clear_when".to_owned(),
                    format!(
                        "must test the same signal as `when` ({:?}), not {:?}",
                        when.signal, clear.signal
                    ),
                ));
            }
        }
        match when {
            Some(when) if problems.is_empty() => Ok(ThresholdRule {
                name: self.name.clone(),
                severity: self.severity,
                when,
                clear_when,
            }),
            _ => Err(problems),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compile_reports_every_problem() {
        let spec = RuleSpec {
            name: " ".into(),
            severity: Severity::Warning,
            when: "speed >".into(),
            clear_when: Some("rpm < 10".into()),
        };
        let problems = spec.compile().unwrap_err();
        let keys: Vec<&str> = problems.iter().map(|(key, _)| key.as_str()).collect();
        assert_eq!(keys, vec!["name", "when"]);

        let spec = RuleSpec {
            name: "hot".into(),
            severity: Severity::Critical,
            when: "coolant > 110 for 2m".into(),
            clear_when: Some("rpm < 95".into()),
        };
        let problems = spec.compile().unwrap_err();
        assert!(problems[0].1.contains("same signal"));
    }
}

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

/// A threshold rule as written in the config file, in fields:
///
/// ```toml
/// [[rules]]
/// name = "coolant_overheat"
/// severity = "critical"
/// when = "coolant_temp_c > 110 for 2m"
/// clear_when = "coolant_temp_c < 95 for 5m"   # optional
/// ```
///
/// or in one line (`clear` and `severity` optional; severity `1` is critical, `2` warning, `3`
/// and above info):
///
/// ```toml
/// [[rules]]
/// name = "coolant_overheat"
/// rule = "coolant_temp_c > 110 for 2m, clear < 95 for 5m, severity 2"
/// ```
///
/// The alert fires when `when` has held continuously (on every sample of the signal, in event
/// time) for its duration, and resolves when `clear_when` has held for its duration — by default
/// as soon as `when`'s comparison is false. Rules compile to detector models and run on the
/// detector engine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Unique rule name, stored with each alert.
    pub name: String,
    /// Alert severity (default `warning`).
    #[serde(default)]
    pub severity: Option<Severity>,
    /// Trigger condition: `signal op number [for duration]`.
    #[serde(default)]
    pub when: Option<String>,
    /// Optional resolve condition on the same signal (hysteresis).
    #[serde(default)]
    pub clear_when: Option<String>,
    /// The one-line form, instead of `when`/`clear_when`/`severity`.
    #[serde(default)]
    pub rule: Option<String>,
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

/// The parts of a one-line rule: when, clear (with its signal filled in) and severity.
fn split_one_line(text: &str) -> Result<(String, Option<String>, Option<Severity>), String> {
    let mut parts = text.split(',').map(str::trim);
    let when = parts.next().unwrap_or_default().to_owned();
    let signal = parse_condition(&when)
        .map(|condition| condition.signal)
        .map_err(|err| err.to_string())?;
    let mut clear = None;
    let mut severity = None;
    for part in parts {
        if let Some(rest) = part.strip_prefix("clear") {
            clear = Some(format!("`{signal}` {}", rest.trim()));
        } else if let Some(rest) = part.strip_prefix("severity") {
            severity = Some(match rest.trim() {
                "critical" | "0" | "1" => Severity::Critical,
                "warning" | "2" => Severity::Warning,
                "info" => Severity::Info,
                number if number.parse::<u32>().is_ok() => Severity::Info,
                other => {
                    return Err(format!(
                        "unknown severity {other:?} (critical, warning, info or a number)"
                    ))
                }
            });
        } else {
            return Err(format!(
                "unexpected part {part:?}: use `clear op value [for d]` or `severity s`"
            ));
        }
    }
    Ok((when, clear, severity))
}

impl RuleSpec {
    /// Parses and checks the rule; errors carry the key (`when`, `clear_when`, `rule`) and position.
    pub fn compile(&self) -> Result<ThresholdRule, Vec<(String, String)>> {
        let mut problems = Vec::new();
        if self.name.trim().is_empty() {
            problems.push(("name".to_owned(), "must not be empty".to_owned()));
        }
        let (when_text, clear_text, severity) = match (&self.rule, &self.when) {
            (Some(_), Some(_)) => {
                problems.push((
                    "rule".to_owned(),
                    "give either `rule` or `when`, not both".to_owned(),
                ));
                return Err(problems);
            }
            (Some(line), None) => match split_one_line(line) {
                Ok((when, clear, severity)) => (when, clear, severity.or(self.severity)),
                Err(err) => {
                    problems.push(("rule".to_owned(), err));
                    return Err(problems);
                }
            },
            (None, Some(when)) => (when.clone(), self.clear_when.clone(), self.severity),
            (None, None) => {
                problems.push((
                    "when".to_owned(),
                    "a rule needs `when` (or the one-line `rule`)".to_owned(),
                ));
                return Err(problems);
            }
        };
        let when_key = if self.rule.is_some() { "rule" } else { "when" };
        let clear_key = if self.rule.is_some() {
            "rule"
        } else {
            "clear_when"
        };
        let when = parse_condition(&when_text)
            .map_err(|err| problems.push((when_key.to_owned(), err.to_string())))
            .ok();
        let clear_when = match &clear_text {
            None => None,
            Some(text) => match parse_condition(text) {
                Ok(condition) => Some(condition),
                Err(err) => {
                    problems.push((clear_key.to_owned(), err.to_string()));
                    None
                }
            },
        };
        if let (Some(when), Some(clear)) = (&when, &clear_when) {
            if clear.signal != when.signal {
                problems.push((
                    clear_key.to_owned(),
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
                severity: severity.unwrap_or(Severity::Warning),
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
            severity: Some(Severity::Warning),
            when: Some("speed >".into()),
            clear_when: Some("rpm < 10".into()),
            rule: None,
        };
        let problems = spec.compile().unwrap_err();
        let keys: Vec<&str> = problems.iter().map(|(key, _)| key.as_str()).collect();
        assert_eq!(keys, vec!["name", "when"]);

        let spec = RuleSpec {
            name: "hot".into(),
            severity: Some(Severity::Critical),
            when: Some("coolant > 110 for 2m".into()),
            clear_when: Some("rpm < 95".into()),
            rule: None,
        };
        let problems = spec.compile().unwrap_err();
        assert!(problems[0].1.contains("same signal"));
    }

    #[test]
    fn one_line_form_compiles_to_the_same_rule() {
        let line = RuleSpec {
            name: "hot".into(),
            severity: None,
            when: None,
            clear_when: None,
            rule: Some("coolant_temp_c > 110 for 2m, clear < 95 for 5m, severity 2".into()),
        };
        let fields = RuleSpec {
            name: "hot".into(),
            severity: Some(Severity::Warning),
            when: Some("coolant_temp_c > 110 for 2m".into()),
            clear_when: Some("coolant_temp_c < 95 for 5m".into()),
            rule: None,
        };
        assert_eq!(line.compile(), fields.compile());
        let bad = RuleSpec {
            rule: Some("coolant_temp_c > 110, hysteresis 5".into()),
            ..line.clone()
        };
        assert!(bad.compile().unwrap_err()[0].1.contains("unexpected part"));
        let both = RuleSpec {
            when: Some("x > 1".into()),
            ..line
        };
        assert_eq!(both.compile().unwrap_err()[0].0, "rule");
    }
}

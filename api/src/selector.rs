//! Label selectors: `matchLabels`/`matchExpressions` and the string form
//! `a=b,c!=d,e in (x,y),f notin (z),g,!h`.

use crate::k8s_struct;
use std::collections::BTreeMap;
use std::fmt;

k8s_struct! {
    /// `metav1.LabelSelector`.
    pub struct LabelSelector {
        pub match_labels: BTreeMap<String, String>,
        pub match_expressions: Vec<LabelSelectorRequirement>,
    }
}

k8s_struct! {
    /// One `matchExpressions` entry.
    pub struct LabelSelectorRequirement {
        pub key: String,
        pub operator: String,
        pub values: Vec<String>,
    }
}

/// An operator of a selector requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `key=value`, `key==value`, `key in (a,b)`.
    In,
    /// `key!=value`, `key notin (a,b)`.
    NotIn,
    /// `key`.
    Exists,
    /// `!key`.
    DoesNotExist,
}

/// One parsed requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// The label key.
    pub key: String,
    /// The operator.
    pub op: Op,
    /// The values (empty for Exists/DoesNotExist).
    pub values: Vec<String>,
}

/// A parsed selector: all requirements must hold. The empty selector matches everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selector {
    /// The requirements, all of which must hold.
    pub requirements: Vec<Requirement>,
}

/// A selector that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid label selector {input:?}: {reason}")]
pub struct SelectorError {
    /// The input.
    pub input: String,
    /// What is wrong.
    pub reason: String,
}

impl Requirement {
    /// Does this requirement hold for these labels?
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let v = labels.get(&self.key);
        match self.op {
            Op::In => v.is_some_and(|v| self.values.contains(v)),
            Op::NotIn => v.is_none_or(|v| !self.values.contains(v)),
            Op::Exists => v.is_some(),
            Op::DoesNotExist => v.is_none(),
        }
    }
}

impl Selector {
    /// Does the selector match these labels?
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }

    /// True when the selector has no requirement (matches everything).
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Parses the string form used by `-l` and the API.
    pub fn parse(input: &str) -> Result<Self, SelectorError> {
        let err = |reason: &str| SelectorError {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        let mut requirements = Vec::new();
        for part in split_top_level(input).map_err(|r| err(&r))? {
            let part = part.trim();
            if part.is_empty() {
                if input.trim().is_empty() {
                    continue;
                }
                return Err(err("empty requirement"));
            }
            let req = if let Some(key) = part.strip_prefix('!') {
                Requirement {
                    key: key.trim().to_string(),
                    op: Op::DoesNotExist,
                    values: vec![],
                }
            } else if let Some((k, v)) = part.split_once("!=") {
                Requirement {
                    key: k.trim().to_string(),
                    op: Op::NotIn,
                    values: vec![v.trim().to_string()],
                }
            } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                Requirement {
                    key: k.trim().to_string(),
                    op: Op::In,
                    values: vec![v.trim().to_string()],
                }
            } else if let Some(open) = part.find('(') {
                let head = part[..open].trim();
                let close = part
                    .rfind(')')
                    .filter(|c| *c == part.len() - 1)
                    .ok_or_else(|| err("missing ')'"))?;
                let values: Vec<String> = part[open + 1..close]
                    .split(',')
                    .map(|v| v.trim().to_string())
                    .collect();
                let (key, op) = if let Some(k) = head.strip_suffix(" notin") {
                    (k, Op::NotIn)
                } else if let Some(k) = head.strip_suffix(" in") {
                    (k, Op::In)
                } else {
                    return Err(err(&format!("expected 'in' or 'notin' in {part:?}")));
                };
                if values.iter().any(|v| v.is_empty()) && values.len() > 1 {
                    return Err(err("empty value in set"));
                }
                Requirement {
                    key: key.trim().to_string(),
                    op,
                    values,
                }
            } else {
                Requirement {
                    key: part.to_string(),
                    op: Op::Exists,
                    values: vec![],
                }
            };
            if let Some(problem) = crate::validate::qualified_name_problem(&req.key) {
                return Err(err(&format!("key {:?}: {problem}", req.key)));
            }
            for v in &req.values {
                if let Some(problem) = crate::validate::label_value_problem(v) {
                    return Err(err(&format!("value {v:?}: {problem}")));
                }
            }
            requirements.push(req);
        }
        Ok(Selector { requirements })
    }

    /// A selector requiring exactly these labels.
    pub fn from_labels(labels: &BTreeMap<String, String>) -> Self {
        Selector {
            requirements: labels
                .iter()
                .map(|(k, v)| Requirement {
                    key: k.clone(),
                    op: Op::In,
                    values: vec![v.clone()],
                })
                .collect(),
        }
    }
}

fn split_top_level(s: &str) -> Result<Vec<&str>, String> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return Err("unbalanced ')'".into());
                }
            }
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err("unbalanced '('".into());
    }
    parts.push(&s[start..]);
    Ok(parts)
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .requirements
            .iter()
            .map(|r| match r.op {
                Op::In if r.values.len() == 1 => format!("{}={}", r.key, r.values[0]),
                Op::NotIn if r.values.len() == 1 => format!("{}!={}", r.key, r.values[0]),
                Op::In => format!("{} in ({})", r.key, r.values.join(",")),
                Op::NotIn => format!("{} notin ({})", r.key, r.values.join(",")),
                Op::Exists => r.key.clone(),
                Op::DoesNotExist => format!("!{}", r.key),
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

impl LabelSelector {
    /// Converts to a [`Selector`]; an invalid operator or value list is an error message.
    pub fn to_selector(&self) -> Result<Selector, String> {
        let mut s = Selector::from_labels(&self.match_labels);
        for (i, e) in self.match_expressions.iter().enumerate() {
            let op = match e.operator.as_str() {
                "In" => Op::In,
                "NotIn" => Op::NotIn,
                "Exists" => Op::Exists,
                "DoesNotExist" => Op::DoesNotExist,
                other => {
                    return Err(format!(
                        "matchExpressions[{i}].operator: Unsupported value: {other:?}: supported values: \"In\", \"NotIn\", \"Exists\", \"DoesNotExist\""
                    ))
                }
            };
            match op {
                Op::In | Op::NotIn if e.values.is_empty() => {
                    return Err(format!(
                        "matchExpressions[{i}].values: Required value: must be specified when `operator` is 'In' or 'NotIn'"
                    ))
                }
                Op::Exists | Op::DoesNotExist if !e.values.is_empty() => {
                    return Err(format!(
                        "matchExpressions[{i}].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
                    ))
                }
                _ => {}
            }
            s.requirements.push(Requirement {
                key: e.key.clone(),
                op,
                values: e.values.clone(),
            });
        }
        Ok(s)
    }

    /// Does this selector match the labels? An invalid selector matches nothing.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.to_selector().is_ok_and(|s| s.matches(labels))
    }

    /// True when it selects everything.
    pub fn is_empty(&self) -> bool {
        self.match_labels.is_empty() && self.match_expressions.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn string_form() {
        let s = Selector::parse("a=b,c!=d,e in (x,y),!f,g, h notin (z)").unwrap();
        assert_eq!(s.requirements.len(), 6);
        assert!(s.matches(&labels(&[("a", "b"), ("e", "y"), ("g", "1")])));
        assert!(!s.matches(&labels(&[("a", "b"), ("e", "y"), ("g", "1"), ("f", "")])));
        assert!(!s.matches(&labels(&[("a", "b"), ("c", "d"), ("e", "x"), ("g", "")])));
        assert!(!s.matches(&labels(&[("a", "b"), ("e", "q"), ("g", "")])));
        assert!(!s.matches(&labels(&[("a", "b"), ("e", "x"), ("g", ""), ("h", "z")])));
        assert_eq!(s.to_string(), "a=b,c!=d,e in (x,y),!f,g,h!=z");
        assert!(Selector::parse("").unwrap().is_empty());
        assert!(Selector::parse("app==web")
            .unwrap()
            .matches(&labels(&[("app", "web")])));
    }

    #[test]
    fn bad_selectors() {
        for bad in [
            "a=b,", "e in (x", "e on (x)", "a b=c", "-a=b", "a=b c", "a=-",
        ] {
            assert!(Selector::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn structured_form() {
        let ls = LabelSelector {
            match_labels: labels(&[("app", "web")]),
            match_expressions: vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: "In".into(),
                values: vec!["front".into()],
            }],
        };
        assert!(ls.matches(&labels(&[("app", "web"), ("tier", "front")])));
        assert!(!ls.matches(&labels(&[("app", "web")])));
        let bad = LabelSelector {
            match_expressions: vec![LabelSelectorRequirement {
                key: "x".into(),
                operator: "Exists".into(),
                values: vec!["1".into()],
            }],
            ..Default::default()
        };
        assert!(bad.to_selector().is_err());
    }
}

//! How each kind reads to a person: `get`'s columns (and `-o wide`'s), and `describe`'s
//! sections, computed from the typed model as kubectl's printers compute them. Every
//! kind's type implements [`Print`]; the CLI lays the rows out and adds events.

mod core;
mod networking;
mod pod;
mod storage;
mod workloads;

pub use self::networking::ingress_class;
pub use self::pod::pod_status;

use crate::object::Object;
use crate::selector::LabelSelector;
use crate::util::parse_rfc3339;
use std::collections::BTreeMap;
use std::fmt::Write;

/// One kind's printer.
pub trait Print {
    /// `get`'s column headers (`-o wide` adds some at the end).
    fn columns(wide: bool) -> Vec<&'static str>;
    /// `get`'s row, one cell per column; `now` is seconds since the epoch (for ages).
    fn row(&self, wide: bool, now: u64) -> Vec<String>;
    /// `describe`'s sections after the metadata every kind shows.
    fn describe(&self, page: &mut Page);
}

/// kubectl's human duration: `45s`, `3m20s`, `17m`, `5h3m`, `20h`, `3d4h`, `40d`, `2y30d`.
pub fn human_duration(secs: u64) -> String {
    let (m, h, d) = (secs / 60, secs / 3600, secs / 86_400);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 600 => format!("{m}m{}s", s % 60),
        s if s < 3 * 3600 => format!("{m}m"),
        s if s < 8 * 3600 => format!("{h}h{}m", m % 60),
        s if s < 2 * 86_400 => format!("{h}h"),
        s if s < 8 * 86_400 => format!("{d}d{}h", h % 24),
        s if s < 2 * 365 * 86_400 => format!("{d}d"),
        _ => format!("{}y{}d", d / 365, d % 365),
    }
}

/// Age of a timestamp at `now`, `<unknown>` if absent.
pub fn age(ts: Option<&str>, now: u64) -> String {
    match ts.and_then(parse_rfc3339) {
        Some(t) => human_duration(now.saturating_sub(t)),
        None => "<unknown>".into(),
    }
}

/// Left-aligned columns separated by three spaces, as kubectl prints them.
pub fn table(header: &[String], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
    }
    let mut out = String::new();
    for r in std::iter::once(header).chain(rows.iter().map(|r| r.as_slice())) {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(c);
            } else {
                line.push_str(&format!(
                    "{c:<w$}   ",
                    w = widths.get(i).copied().unwrap_or(0)
                ));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The decoded length of a base64 value (a Secret's data, a ConfigMap's binary data).
pub fn secret_len(b64: &str) -> usize {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map(|b| b.len())
        .unwrap_or(0)
}

/// `x`, or `<none>` when empty.
pub(crate) fn or_none(x: &str) -> &str {
    if x.is_empty() {
        "<none>"
    } else {
        x
    }
}

/// `k=v,k=v`, or `<none>`.
pub(crate) fn map_str(m: &BTreeMap<String, String>) -> String {
    if m.is_empty() {
        return "<none>".into();
    }
    m.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// A label selector as kubectl writes it (`app=web,tier in (a,b)`), or `<none>`.
pub(crate) fn selector_str(sel: Option<&LabelSelector>) -> String {
    match sel.and_then(|l| l.to_selector().ok()) {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => "<none>".into(),
    }
}

/// A number that may be absent, as `0`.
pub(crate) fn n<T: Default + ToString>(x: Option<T>) -> String {
    x.unwrap_or_default().to_string()
}

/// `describe`'s page: labelled fields aligned at column 20, sections, tables.
#[derive(Debug, Default)]
pub struct Page {
    out: String,
}

impl Page {
    /// An empty page.
    pub fn new() -> Page {
        Page::default()
    }

    /// `Label:              value`, indented.
    pub fn field(&mut self, indent: usize, label: &str, value: &str) {
        let pad = " ".repeat(indent);
        let width = (20 - indent.min(19)).max(label.len() + 2);
        let _ = writeln!(self.out, "{pad}{:<width$}{value}", format!("{label}:"));
    }

    /// A map as `Label:  k=v` lines (the label on the first), or `<none>`.
    pub fn map(&mut self, indent: usize, label: &str, m: &BTreeMap<String, String>) {
        let pad = " ".repeat(indent);
        let w = 20 - indent.min(19);
        if m.is_empty() {
            let _ = writeln!(self.out, "{pad}{:<w$}<none>", format!("{label}:"));
            return;
        }
        for (i, (k, val)) in m.iter().enumerate() {
            let l = if i == 0 {
                format!("{label}:")
            } else {
                String::new()
            };
            let _ = writeln!(self.out, "{pad}{l:<w$}{k}={val}");
        }
    }

    /// One line as given.
    pub fn line(&mut self, text: &str) {
        self.out.push_str(text);
        self.out.push('\n');
    }

    /// A table, each line indented by two spaces.
    pub fn table(&mut self, head: &[&str], rows: &[Vec<String>]) {
        let head: Vec<String> = head.iter().map(|h| h.to_string()).collect();
        for l in table(&head, rows).lines() {
            let _ = writeln!(self.out, "  {l}");
        }
    }

    /// The text so far.
    pub fn as_str(&self) -> &str {
        &self.out
    }

    /// The text.
    pub fn into_string(self) -> String {
        self.out
    }
}

impl Object {
    /// `describe`'s page for the object: the metadata every kind shows, then the kind's
    /// sections (the CLI adds the events that name it).
    pub fn describe(&self) -> Page {
        let mut page = Page::new();
        let m = self.meta();
        page.field(0, "Name", m.name());
        if self.kind().namespaced() {
            page.field(0, "Namespace", m.namespace());
        }
        page.map(0, "Labels", &m.labels);
        page.map(0, "Annotations", &m.annotations);
        page.field(
            0,
            "CreationTimestamp",
            m.creation_timestamp.as_deref().unwrap_or(""),
        );
        self.describe_sections(&mut page);
        page
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(human_duration(45), "45s");
        assert_eq!(human_duration(200), "3m20s");
        assert_eq!(human_duration(17 * 60), "17m");
        assert_eq!(human_duration(5 * 3600 + 180), "5h3m");
        assert_eq!(human_duration(20 * 3600), "20h");
        assert_eq!(human_duration(3 * 86_400 + 4 * 3600), "3d4h");
        assert_eq!(human_duration(40 * 86_400), "40d");
        assert_eq!(human_duration(760 * 86_400), "2y30d");
    }

    #[test]
    fn tables_align() {
        let t = table(
            &["NAME".into(), "READY".into()],
            &[vec!["a-long-name".into(), "1/1".into()]],
        );
        assert_eq!(t, "NAME          READY\na-long-name   1/1\n");
    }
}

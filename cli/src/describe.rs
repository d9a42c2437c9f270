//! `skiff describe`: the object's page, as its kind's printer in skiff-api writes it, and
//! the recent events that name it.

use crate::print::now;
use serde_json::Value;
use skiff_api::core::Event;
use skiff_api::print::{age, Page};
use skiff_api::{Kind, Object};

/// Renders an object and the events that name it.
pub fn describe(kind: Kind, v: &Value, events: &[Value]) -> anyhow::Result<String> {
    let o = Object::decode(kind, v, &mut |_| {})
        .map_err(|e| anyhow::anyhow!("the server sent a {kind} skiff cannot read: {e}"))?;
    let mut page = o.describe();
    if kind != Kind::Event {
        let events: Vec<Event> = events
            .iter()
            .filter_map(|e| serde_json::from_value(e.clone()).ok())
            .collect();
        events_section(&mut page, &events, now());
    }
    Ok(page.into_string())
}

/// `Events:` and a table of them, or `<none>`.
fn events_section(page: &mut Page, events: &[Event], now: u64) {
    if events.is_empty() {
        page.line("Events:              <none>");
        return;
    }
    page.line("Events:");
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|e| {
            let last = e
                .last_timestamp
                .as_deref()
                .or(e.metadata.creation_timestamp.as_deref());
            let count = e.count.unwrap_or(1);
            let when = if count > 1 {
                format!("{} (x{count})", age(last, now))
            } else {
                age(last, now)
            };
            vec![
                e.type_.clone().unwrap_or_default(),
                e.reason.clone().unwrap_or_default(),
                when,
                e.source
                    .as_ref()
                    .and_then(|s| s.component.clone())
                    .unwrap_or_default(),
                e.message.clone().unwrap_or_default(),
            ]
        })
        .collect();
    page.table(&["Type", "Reason", "Age", "From", "Message"], &rows);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_follow_the_page() {
        let pod = json!({"metadata": {"name": "p", "namespace": "default"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
        let ev = json!({"metadata": {"name": "e", "creationTimestamp": "2026-01-01T00:00:00Z"}, "involvedObject": {"kind": "Pod", "name": "p"}, "type": "Warning", "reason": "BackOff", "count": 3, "source": {"component": "skiff-agent"}, "message": "restarting"});
        let d = describe(Kind::Pod, &pod, &[ev]).unwrap();
        assert!(
            d.starts_with("Name:               p\nNamespace:          default\n"),
            "{d}"
        );
        let events = d.split("Events:\n").nth(1).expect(&d);
        assert!(events.contains("Warning   BackOff"), "{events}");
        assert!(
            events.contains("(x3)   skiff-agent   restarting"),
            "{events}"
        );
        let none = describe(Kind::Pod, &pod, &[]).unwrap();
        assert!(none.ends_with("Events:              <none>\n"), "{none}");
    }
}

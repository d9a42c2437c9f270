//! Field management, as Kubernetes' server-side apply does it: each writer (a *field
//! manager*) owns a set of fields, kept in `metadata.managedFields` as a `FieldsV1` tree.
//! An apply owns exactly the fields its configuration names: it conflicts with another
//! manager that owns one of them with a different value (unless forced, which takes the
//! field), and a field it applied before and no longer names is removed unless someone
//! else owns it. Any other write (create, update, patch) makes its manager own what it
//! changed and takes those fields from everyone else. Pure: JSON in, JSON out.
//!
//! Lists with a merge key (containers by `name`...) are sets of items, each item its own
//! fields; other lists and label selectors are atomic (one field), as in Kubernetes.

use super::patch::merge_key;
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;

/// One field: its path as `FieldsV1` keys (`f:spec`, `k:{"name":"app"}`).
type Path = Vec<String>;

/// A set of fields: leaves, and list items (which are members themselves, Kubernetes' `.`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet(BTreeSet<Path>);

/// Metadata fields the server sets: nobody owns them.
const SERVER_META: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
];

impl FieldSet {
    /// The fields an object (or an apply configuration) sets; with `status`, only its
    /// status, else everything but its status.
    pub fn of(obj: &Value, status: bool) -> FieldSet {
        let mut set = FieldSet::default();
        let Value::Object(m) = obj else {
            return set;
        };
        for (k, v) in m {
            let wanted = match k.as_str() {
                "apiVersion" | "kind" => false,
                "status" => status,
                _ => !status,
            };
            if !wanted {
                continue;
            }
            if k == "metadata" {
                let Value::Object(meta) = v else { continue };
                for (mk, mv) in meta {
                    if !SERVER_META.contains(&mk.as_str()) {
                        set.walk(vec!["f:metadata".into(), format!("f:{mk}")], mv, "");
                    }
                }
            } else {
                set.walk(vec![format!("f:{k}")], v, "");
            }
        }
        set
    }

    /// Adds what `v`, at `path` (its parent's dotted path `parent`), sets.
    fn walk(&mut self, path: Path, v: &Value, parent: &str) {
        let field = path.last().map_or("", |f| f.trim_start_matches("f:"));
        match v {
            Value::Null => {}
            Value::Object(m) if !m.is_empty() && !atomic(field, m) => {
                let here = format!("{parent}.{field}");
                for (k, child) in m {
                    let mut p = path.clone();
                    p.push(format!("f:{k}"));
                    self.walk(p, child, &here);
                }
            }
            Value::Array(items) => match merge_key(parent, field) {
                Some(key) if items.iter().all(|i| i.get(key).is_some()) => {
                    let here = format!("{parent}.{field}");
                    for item in items {
                        let mut p = path.clone();
                        p.push(item_key(key, &item[key]));
                        self.0.insert(p.clone());
                        if let Value::Object(m) = item {
                            for (k, child) in m {
                                let mut c = p.clone();
                                c.push(format!("f:{k}"));
                                self.walk(c, child, &here);
                            }
                        }
                    }
                }
                _ => {
                    self.0.insert(path);
                }
            },
            _ => {
                self.0.insert(path);
            }
        }
    }

    /// Reads a `FieldsV1` tree.
    pub fn from_v1(v: &Value) -> FieldSet {
        fn walk(set: &mut FieldSet, path: &Path, v: &Value) {
            let Value::Object(m) = v else { return };
            if m.is_empty() && !path.is_empty() {
                set.0.insert(path.clone());
            }
            for (k, child) in m {
                if k == "." {
                    set.0.insert(path.clone());
                } else {
                    let mut p = path.clone();
                    p.push(k.clone());
                    walk(set, &p, child);
                }
            }
        }
        let mut set = FieldSet::default();
        walk(&mut set, &Vec::new(), v);
        set
    }

    /// Writes the set as a `FieldsV1` tree.
    pub fn to_v1(&self) -> Value {
        let mut root = Map::new();
        for path in &self.0 {
            let mut node = &mut root;
            for k in path {
                let child = node.entry(k.clone()).or_insert_with(|| json!({}));
                let Value::Object(m) = child else { break };
                node = m;
            }
        }
        // A member (a list item) with fields of its own also says `.`.
        fn mark(node: &mut Map<String, Value>, path: &mut Path, set: &BTreeSet<Path>) {
            for (k, v) in node.iter_mut() {
                if k == "." {
                    continue;
                }
                path.push(k.clone());
                if let Value::Object(m) = v {
                    if !m.is_empty() && set.contains(path.as_slice()) {
                        m.insert(".".into(), json!({}));
                    }
                    mark(m, path, set);
                }
                path.pop();
            }
        }
        mark(&mut root, &mut Vec::new(), &self.0);
        Value::Object(root)
    }

    /// True when no field is in the set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The fields (leaves: not a list item with fields of its own in the set).
    fn leaves(&self) -> impl Iterator<Item = &Path> {
        self.0.iter().filter(|p| {
            self.0
                .range((*p).clone()..)
                .nth(1)
                .is_none_or(|n| !n.starts_with(p))
        })
    }

    fn remove_all(&mut self, other: &FieldSet) {
        self.0.retain(|p| !other.0.contains(p));
    }
}

/// A label selector is one field (`structType=atomic`), as are maps that say nothing else.
fn atomic(field: &str, m: &Map<String, Value>) -> bool {
    field == "selector" && (m.contains_key("matchLabels") || m.contains_key("matchExpressions"))
}

/// `k:{"name":"app"}`: a list item by its merge key.
fn item_key(key: &str, value: &Value) -> String {
    let mut m = Map::new();
    m.insert(key.to_string(), value.clone());
    format!("k:{}", Value::Object(m))
}

/// The value at a path, if the object has it.
fn value_at<'a>(obj: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut v = obj;
    for k in path {
        v = if let Some(f) = k.strip_prefix("f:") {
            v.get(f)?
        } else if let Some(key) = k.strip_prefix("k:") {
            let Ok(Value::Object(want)) = serde_json::from_str::<Value>(key) else {
                return None;
            };
            v.as_array()?
                .iter()
                .find(|i| want.iter().all(|(wk, wv)| i.get(wk) == Some(wv)))?
        } else if let Some(val) = k.strip_prefix("v:") {
            let want: Value = serde_json::from_str(val).ok()?;
            v.as_array()?.iter().find(|i| **i == want)?
        } else {
            return None;
        };
    }
    Some(v)
}

/// Removes the field at a path (a list item removes the item).
fn remove_at(obj: &mut Value, path: &[String]) {
    let Some((last, parent)) = path.split_last() else {
        return;
    };
    let mut v = obj;
    for k in parent {
        let next = if let Some(f) = k.strip_prefix("f:") {
            v.get_mut(f)
        } else {
            let i = value_index(v, k);
            match (i, v.as_array_mut()) {
                (Some(i), Some(a)) => a.get_mut(i),
                _ => None,
            }
        };
        let Some(n) = next else { return };
        v = n;
    }
    if let Some(f) = last.strip_prefix("f:") {
        if let Value::Object(m) = v {
            m.remove(f);
        }
    } else if let Some(i) = value_index(v, last) {
        if let Value::Array(a) = v {
            a.remove(i);
        }
    }
}

fn value_index(list: &Value, k: &str) -> Option<usize> {
    let items = list.as_array()?;
    let item = value_at(list, std::slice::from_ref(&k.to_string()))?;
    items.iter().position(|i| std::ptr::eq(i, item))
}

/// A field another manager owns with a different value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The other manager.
    pub manager: String,
    /// The API version it wrote with.
    pub api_version: String,
    /// The field, as Kubernetes names it (`.spec.replicas`, `.spec.containers[name="app"].image`).
    pub field: String,
}

/// Kubernetes' name of a field path.
fn field_name(path: &[String]) -> String {
    let mut out = String::new();
    for k in path {
        if let Some(f) = k.strip_prefix("f:") {
            out.push('.');
            out.push_str(f);
        } else if let Some(key) = k.strip_prefix("k:") {
            let m: Map<String, Value> = serde_json::from_str(key).unwrap_or_default();
            let inner: Vec<String> = m.iter().map(|(k, v)| format!("{k}={v}")).collect();
            out.push_str(&format!("[{}]", inner.join(",")));
        } else if let Some(v) = k.strip_prefix("v:") {
            out.push_str(&format!("[={v}]"));
        }
    }
    out
}

/// One `managedFields` entry, its set read.
struct Entry {
    raw: Map<String, Value>,
    set: FieldSet,
}

impl Entry {
    fn read(v: &Value) -> Option<Entry> {
        let raw = v.as_object()?.clone();
        let set = raw
            .get("fieldsV1")
            .map(FieldSet::from_v1)
            .unwrap_or_default();
        Some(Entry { raw, set })
    }
    fn text(&self, f: &str) -> &str {
        self.raw.get(f).and_then(Value::as_str).unwrap_or("")
    }
    fn is(&self, manager: &str, operation: &str, subresource: &str) -> bool {
        self.text("manager") == manager
            && self.text("operation") == operation
            && self.text("subresource") == subresource
    }
}

/// Who writes: the manager's name, the API version it writes with, the time (RFC 3339)
/// and the subresource (`""` or `status`).
#[derive(Debug, Clone)]
pub struct Writer<'a> {
    /// The field manager.
    pub manager: &'a str,
    /// Its `apiVersion`.
    pub api_version: &'a str,
    /// Now, RFC 3339.
    pub time: &'a str,
    /// `""` or `"status"`.
    pub subresource: &'a str,
}

fn entries(obj: &Value) -> Vec<Entry> {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Entry::read).collect())
        .unwrap_or_default()
}

/// Writes the entries back, the writer's own (operation `op`) with `set`; empty ones go.
fn store_entries(obj: &mut Value, mut list: Vec<Entry>, w: &Writer, op: &str, set: FieldSet) {
    list.retain(|e| !e.is(w.manager, op, w.subresource));
    let mut raw = Map::new();
    raw.insert("manager".into(), w.manager.into());
    raw.insert("operation".into(), op.into());
    raw.insert("apiVersion".into(), w.api_version.into());
    raw.insert("time".into(), w.time.into());
    raw.insert("fieldsType".into(), "FieldsV1".into());
    if !w.subresource.is_empty() {
        raw.insert("subresource".into(), w.subresource.into());
    }
    list.push(Entry { raw, set });
    let out: Vec<Value> = list
        .into_iter()
        .filter(|e| !e.set.is_empty())
        .map(|mut e| {
            e.raw.insert("fieldsV1".into(), e.set.to_v1());
            Value::Object(e.raw)
        })
        .collect();
    if let Some(Value::Object(meta)) = obj.get_mut("metadata") {
        meta.insert("managedFields".into(), Value::Array(out));
    }
}

/// A create, update or patch by `w`: `next` (what will be stored) gets its managed fields
/// from `current`'s, the writer owning what it changed. A write that sends managed fields
/// of its own (different from the current ones) sets them as sent.
pub fn track_update(current: Option<&Value>, next: &mut Value, w: &Writer) {
    let sent = next.pointer("/metadata/managedFields").cloned();
    let had = current.and_then(|c| c.pointer("/metadata/managedFields"));
    if sent
        .as_ref()
        .is_some_and(|s| s.as_array().is_some_and(|a| !a.is_empty()))
        && sent.as_ref() != had
    {
        return;
    }
    let status = w.subresource == "status";
    let empty = Value::Null;
    let old = current.unwrap_or(&empty);
    let new_fields = FieldSet::of(next, status);
    let old_fields = FieldSet::of(old, status);
    let mut changed = FieldSet::default();
    for p in new_fields.0.iter() {
        if value_at(old, p) != value_at(next, p) {
            changed.0.insert(p.clone());
        }
    }
    let gone = FieldSet(old_fields.0.difference(&new_fields.0).cloned().collect());
    let mut list = current.map(entries).unwrap_or_default();
    let mut mine = FieldSet::default();
    for e in &mut list {
        e.set.remove_all(&changed);
        e.set.remove_all(&gone);
        if e.is(w.manager, "Update", w.subresource) {
            mine = e.set.clone();
        }
    }
    mine.0.extend(changed.0);
    store_entries(next, list, w, "Update", mine);
}

/// A server-side apply of `config` by `w` on `current` (`None`: the object does not
/// exist): the object to store, or the fields other managers own with other values.
/// `force` takes those fields instead.
pub fn apply(
    current: Option<&Value>,
    config: &Value,
    w: &Writer,
    force: bool,
) -> Result<Value, Vec<Conflict>> {
    let status = w.subresource == "status";
    let wanted = FieldSet::of(config, status);
    let mut list = current.map(entries).unwrap_or_default();
    let empty = Value::Null;
    let now = current.unwrap_or(&empty);
    let mut conflicts = Vec::new();
    let mut previous = FieldSet::default();
    let mut others = FieldSet::default();
    let leaves: BTreeSet<&Path> = wanted.leaves().collect();
    for e in &mut list {
        if e.is(w.manager, "Apply", w.subresource) {
            previous = e.set.clone();
            continue;
        }
        let mut taken = Vec::new();
        for p in e.set.0.iter().filter(|p| leaves.contains(p)) {
            if value_at(now, p) != value_at(config, p) {
                conflicts.push(Conflict {
                    manager: e.text("manager").to_string(),
                    api_version: e.text("apiVersion").to_string(),
                    field: field_name(p),
                });
                taken.push(p.clone());
            }
        }
        for p in taken {
            e.set.0.remove(&p);
        }
        others.0.extend(e.set.0.iter().cloned());
    }
    if !conflicts.is_empty() && !force {
        return Err(conflicts);
    }
    let mut next = current.cloned().unwrap_or_else(|| json!({}));
    // What this manager applied before and no longer does, unless someone else owns it;
    // shallowest first: an item goes with its fields (its key among them).
    let mut gone: Vec<&Path> = previous
        .0
        .iter()
        .filter(|p| !wanted.0.contains(*p) && !others.0.contains(*p))
        .collect();
    gone.sort_by_key(|p| p.len());
    for p in gone {
        remove_at(&mut next, p);
    }
    // Only the part the apply is for: the status through `/status`, the rest otherwise.
    let part: Map<String, Value> = config
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| (k.as_str() == "status") == status || k.as_str() == "metadata")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    next = merge(next, &Value::Object(part), "");
    store_entries(&mut next, list, w, "Apply", wanted);
    Ok(next)
}

/// Merges an apply configuration into an object (`path`: the value's dotted path): maps
/// field by field, lists with a merge key item by item, anything else replaced.
fn merge(target: Value, config: &Value, path: &str) -> Value {
    let Value::Object(c) = config else {
        return config.clone();
    };
    let field = path.rsplit('.').next().unwrap_or("");
    if atomic(field, c) {
        return config.clone();
    }
    let mut t = match target {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    for (k, v) in c {
        if path.is_empty() && k == "metadata" {
            let mut meta = v.clone();
            if let Value::Object(m) = &mut meta {
                m.remove("managedFields");
            }
            let old = t.remove(k).unwrap_or(Value::Null);
            t.insert(k.clone(), merge(old, &meta, ".metadata"));
            continue;
        }
        let here = format!("{path}.{k}");
        let old = t.remove(k).unwrap_or(Value::Null);
        let new = match (old, v) {
            (Value::Array(old), Value::Array(items)) => match merge_key(path, k) {
                Some(key) if items.iter().all(|i| i.get(key).is_some()) => {
                    Value::Array(merge_list(old, items, key, &here))
                }
                _ => v.clone(),
            },
            (old, Value::Object(_)) => merge(old, v, &here),
            (_, v) => v.clone(),
        };
        t.insert(k.clone(), new);
    }
    Value::Object(t)
}

fn merge_list(mut old: Vec<Value>, items: &[Value], key: &str, here: &str) -> Vec<Value> {
    for item in items {
        match old.iter().position(|o| o.get(key) == item.get(key)) {
            Some(i) => old[i] = merge(std::mem::take(&mut old[i]), item, here),
            None => old.push(item.clone()),
        }
    }
    old
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(manager: &str) -> Writer<'_> {
        Writer {
            manager,
            api_version: "apps/v1",
            time: "2026-12-07T00:00:00Z",
            subresource: "",
        }
    }

    fn deployment(replicas: i64, image: &str) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "app", "image": image}]}
                }
            }
        })
    }

    fn managers(obj: &Value) -> Vec<(String, String)> {
        entries(obj)
            .iter()
            .map(|e| (e.text("manager").into(), e.text("operation").into()))
            .collect()
    }

    #[test]
    fn a_configuration_is_kubernetes_fields_v1_tree_and_reads_back() {
        let set = FieldSet::of(&deployment(2, "nginx"), false);
        let v1 = set.to_v1();
        assert_eq!(
            v1,
            json!({
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {
                    "f:replicas": {},
                    "f:selector": {},
                    "f:template": {
                        "f:metadata": {"f:labels": {"f:app": {}}},
                        "f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {
                            ".": {}, "f:image": {}, "f:name": {}
                        }}}
                    }
                }
            })
        );
        assert_eq!(FieldSet::from_v1(&v1), set);
    }

    #[test]
    fn an_apply_creates_with_its_manager_and_a_second_manager_conflicts_unless_forced() {
        let a = apply(None, &deployment(2, "nginx"), &w("a"), false).unwrap();
        assert_eq!(managers(&a), vec![("a".into(), "Apply".into())]);
        assert_eq!(a["spec"]["replicas"], 2);
        // Same values: shared, no conflict.
        let shared = apply(Some(&a), &deployment(2, "nginx"), &w("b"), false).unwrap();
        assert_eq!(managers(&shared).len(), 2);
        // A different value of a field `a` owns.
        let err = apply(Some(&a), &deployment(5, "nginx"), &w("b"), false).unwrap_err();
        assert_eq!(
            err,
            vec![Conflict {
                manager: "a".into(),
                api_version: "apps/v1".into(),
                field: ".spec.replicas".into()
            }]
        );
        let forced = apply(Some(&a), &deployment(5, "nginx"), &w("b"), true).unwrap();
        assert_eq!(forced["spec"]["replicas"], 5);
        let a_now = entries(&forced)
            .into_iter()
            .find(|e| e.text("manager") == "a")
            .unwrap();
        assert!(value_at(&a_now.set.to_v1(), &["f:spec".into(), "f:replicas".into()]).is_none());
        assert!(a_now
            .set
            .0
            .contains(&vec!["f:spec".to_string(), "f:selector".to_string()]));
    }

    #[test]
    fn a_field_no_longer_applied_is_removed_unless_another_manager_owns_it() {
        let mut two = deployment(2, "nginx");
        two["metadata"]["labels"]["tier"] = json!("front");
        let a = apply(None, &two, &w("a"), false).unwrap();
        let dropped = apply(Some(&a), &deployment(2, "nginx"), &w("a"), false).unwrap();
        assert_eq!(dropped["metadata"]["labels"], json!({"app": "web"}));
        // `b` applied the same label too: it stays.
        let b = apply(Some(&a), &two, &w("b"), false).unwrap();
        let kept = apply(Some(&b), &deployment(2, "nginx"), &w("a"), false).unwrap();
        assert_eq!(kept["metadata"]["labels"]["tier"], "front");
        // A container no longer applied goes; one applied stays merged by name.
        let mut sidecar = deployment(2, "nginx");
        sidecar["spec"]["template"]["spec"]["containers"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "log", "image": "busybox"}));
        let with = apply(Some(&a), &sidecar, &w("a"), false).unwrap();
        assert_eq!(
            with["spec"]["template"]["spec"]["containers"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        let without = apply(Some(&with), &deployment(2, "nginx"), &w("a"), false).unwrap();
        assert_eq!(
            without["spec"]["template"]["spec"]["containers"],
            json!([{"name": "app", "image": "nginx"}])
        );
    }

    #[test]
    fn an_update_takes_what_it_changed_so_the_next_apply_conflicts_with_it() {
        let a = apply(None, &deployment(2, "nginx"), &w("a"), false).unwrap();
        let mut scaled = a.clone();
        scaled["spec"]["replicas"] = json!(7);
        scaled["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:2");
        track_update(Some(&a), &mut scaled, &w("kubectl-edit"));
        assert_eq!(
            managers(&scaled),
            vec![
                ("a".into(), "Apply".into()),
                ("kubectl-edit".into(), "Update".into())
            ]
        );
        let err = apply(Some(&scaled), &deployment(2, "nginx"), &w("a"), false).unwrap_err();
        let fields: Vec<&str> = err.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(
            fields,
            vec![
                ".spec.replicas",
                ".spec.template.spec.containers[name=\"app\"].image"
            ]
        );
        assert!(err.iter().all(|c| c.manager == "kubectl-edit"));
        // An update that changes nothing adds no entry.
        let mut same = a.clone();
        track_update(Some(&a), &mut same, &w("noop"));
        assert_eq!(managers(&same), vec![("a".into(), "Apply".into())]);
        // A create owns everything it set.
        let mut created = deployment(1, "x");
        track_update(None, &mut created, &w("kubectl-create"));
        let e = &entries(&created)[0];
        assert_eq!(e.set, FieldSet::of(&deployment(1, "x"), false));
    }

    #[test]
    fn removing_a_list_item_or_field_by_path() {
        let mut d = deployment(2, "nginx");
        remove_at(
            &mut d,
            &[
                "f:spec".into(),
                "f:template".into(),
                "f:spec".into(),
                "f:containers".into(),
                "k:{\"name\":\"app\"}".into(),
            ],
        );
        assert_eq!(d["spec"]["template"]["spec"]["containers"], json!([]));
        remove_at(
            &mut d,
            &["f:metadata".into(), "f:labels".into(), "f:app".into()],
        );
        assert_eq!(d["metadata"]["labels"], json!({}));
        remove_at(&mut d, &["f:nothing".into(), "f:here".into()]);
    }
}

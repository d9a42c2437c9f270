//! YAML in (multi-document, with the line of every field path) and YAML out.
//!
//! Manifests are read with `yaml-rust2` (maintained; serde_yaml is not): its event parser
//! gives a position for every node, which is how errors name the line of a field. Plain
//! scalars resolve by the YAML 1.2 core schema, so `yes` and `on` stay strings.

use serde_json::{Map, Number, Value};
use std::collections::HashMap;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// One document of a YAML stream, as JSON, with the line of each field path.
#[derive(Debug, Clone)]
pub struct Document {
    /// The document's content.
    pub value: Value,
    /// 1-based line where the document starts.
    pub line: usize,
    /// 1-based line of each path (`spec.template.spec.containers[0].image`).
    pub lines: HashMap<String, usize>,
}

impl Document {
    /// The line of a path, or of its nearest ancestor that has one. Accepts both
    /// `metadata.labels.app` and Kubernetes' `metadata.labels[app]` forms.
    pub fn line_of(&self, path: &str) -> usize {
        let mut p = normalize_path(path);
        loop {
            if let Some(l) = self.lines.get(&p) {
                return *l;
            }
            match p.rfind(['.', '[']) {
                Some(i) => p.truncate(i),
                None => return self.line,
            }
        }
    }
}

/// Rewrites `a[key]` (a non-numeric map key) as `a.key`.
pub fn normalize_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut rest = path;
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find(']') else {
            out.push_str(&rest[open..]);
            return out;
        };
        let inner = &rest[open + 1..open + close];
        if inner.bytes().all(|b| b.is_ascii_digit()) && !inner.is_empty() {
            out.push_str(&rest[open..=open + close]);
        } else {
            out.push('.');
            out.push_str(inner);
        }
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    out
}

/// A YAML syntax or structure error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct YamlError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

enum Frame {
    Seq {
        items: Vec<Value>,
        anchor: usize,
        path: String,
    },
    Map {
        map: Map<String, Value>,
        key: Option<String>,
        anchor: usize,
        path: String,
        key_lines: HashMap<String, usize>,
        merged: std::collections::HashSet<String>,
    },
}

#[derive(Default)]
struct Builder {
    docs: Vec<Document>,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Value>,
    lines: HashMap<String, usize>,
    doc_line: usize,
    root: Option<Value>,
    error: Option<YamlError>,
}

impl Builder {
    fn fail(&mut self, line: usize, message: String) {
        if self.error.is_none() {
            self.error = Some(YamlError { line, message });
        }
    }

    /// The path of the next value, or None when the next scalar is a mapping key.
    fn child_path(&self) -> Option<String> {
        match self.stack.last() {
            None => Some(String::new()),
            Some(Frame::Seq { items, path, .. }) => Some(format!("{path}[{}]", items.len())),
            Some(Frame::Map {
                key: Some(k), path, ..
            }) => Some(join(path, k)),
            Some(Frame::Map { key: None, .. }) => None,
        }
    }

    fn push_value(&mut self, v: Value, line: usize) {
        match self.stack.last_mut() {
            None => self.root = Some(v),
            Some(Frame::Seq { items, .. }) => items.push(v),
            Some(Frame::Map {
                map,
                key,
                key_lines,
                merged,
                ..
            }) => {
                let k = key.take().expect("value follows its key");
                if k == "<<" {
                    // Merge key: entries already present win.
                    let sources = match v {
                        Value::Array(a) => a,
                        other => vec![other],
                    };
                    for s in sources {
                        match s {
                            Value::Object(m) => {
                                for (k2, v2) in m {
                                    if !map.contains_key(&k2) {
                                        merged.insert(k2.clone());
                                        map.insert(k2, v2);
                                    }
                                }
                            }
                            _ => {
                                self.fail(line, "merge key `<<` needs a mapping".into());
                                return;
                            }
                        }
                    }
                    return;
                }
                if merged.remove(&k) {
                    map.insert(k, v);
                    return;
                }
                if map.contains_key(&k) {
                    let first = key_lines.get(&k).copied().unwrap_or(line);
                    self.fail(
                        line,
                        format!("mapping key {k:?} already defined at line {first}"),
                    );
                    return;
                }
                map.insert(k, v);
            }
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn resolve_plain(s: &str) -> Value {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    // YAML 1.1, as Kubernetes reads it: a leading 0 makes an octal integer (the docs'
    // `defaultMode: 0400` is 256).
    if body.len() > 1 && body.starts_with('0') && body.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        if let Ok(u) = i64::from_str_radix(body, 8) {
            return Value::Number(if s.starts_with('-') { -u } else { u }.into());
        }
    }
    if !body.is_empty() && body.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(i) = s.parse::<i64>() {
            return Value::Number(i.into());
        }
        if let Ok(u) = s.parse::<u64>() {
            return Value::Number(u.into());
        }
    }
    for (prefix, radix) in [("0x", 16), ("0o", 8)] {
        if let Some(digits) = s.strip_prefix(prefix).filter(|d| !d.is_empty()) {
            if let Ok(u) = u64::from_str_radix(digits, radix) {
                return Value::Number(u.into());
            }
        }
    }
    if is_yaml_float(body) {
        if let Some(n) = s.parse::<f64>().ok().and_then(Number::from_f64) {
            return Value::Number(n);
        }
    }
    Value::String(s.to_string())
}

fn is_yaml_float(b: &str) -> bool {
    // [0-9]+(\.[0-9]*)?|\.[0-9]+ then optional [eE][-+]?[0-9]+
    let (mant, exp) = match b.find(['e', 'E']) {
        Some(i) => (&b[..i], Some(&b[i + 1..])),
        None => (b, None),
    };
    let mant_ok = match mant.split_once('.') {
        Some((i, f)) => {
            (i.bytes().all(|c| c.is_ascii_digit()) && f.bytes().all(|c| c.is_ascii_digit()))
                && !(i.is_empty() && f.is_empty())
        }
        None => !mant.is_empty() && mant.bytes().all(|c| c.is_ascii_digit()),
    };
    let exp_ok = exp.is_none_or(|e| {
        let d = e.strip_prefix(['-', '+']).unwrap_or(e);
        !d.is_empty() && d.bytes().all(|c| c.is_ascii_digit())
    });
    mant_ok && exp_ok
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        let line = mark.line();
        match ev {
            Event::DocumentStart => {
                self.doc_line = line;
                self.lines.clear();
                self.anchors.clear();
                self.root = None;
            }
            Event::DocumentEnd => {
                let value = self.root.take().unwrap_or(Value::Null);
                let lines = std::mem::take(&mut self.lines);
                self.docs.push(Document {
                    value,
                    line: self.doc_line,
                    lines,
                });
            }
            Event::Scalar(s, style, anchor, tag) => {
                let Some(path) = self.child_path() else {
                    // A mapping key.
                    if let Some(Frame::Map {
                        key,
                        key_lines,
                        path,
                        ..
                    }) = self.stack.last_mut()
                    {
                        let p = join(path, &s);
                        self.lines.insert(p, line);
                        key_lines.entry(s.clone()).or_insert(line);
                        *key = Some(s);
                    }
                    return;
                };
                self.lines.entry(path).or_insert(line);
                let v = match (&tag, style) {
                    (Some(t), _) if t.handle == "!!" || t.handle == "tag:yaml.org,2002:" => {
                        match t.suffix.as_str() {
                            "str" | "binary" => Value::String(s),
                            "null" => Value::Null,
                            "int" | "float" | "bool" => match resolve_plain(&s) {
                                Value::String(_) => {
                                    self.fail(line, format!("{s:?} is not a valid !!{}", t.suffix));
                                    return;
                                }
                                v => v,
                            },
                            other => {
                                self.fail(line, format!("unsupported tag !!{other}"));
                                return;
                            }
                        }
                    }
                    (_, TScalarStyle::Plain) => resolve_plain(&s),
                    _ => Value::String(s),
                };
                if anchor > 0 {
                    self.anchors.insert(anchor, v.clone());
                }
                self.push_value(v, line);
            }
            Event::Alias(id) => {
                if self.child_path().is_none() {
                    self.fail(line, "an alias cannot be a mapping key".into());
                    return;
                }
                match self.anchors.get(&id).cloned() {
                    Some(v) => self.push_value(v, line),
                    None => self.fail(line, "alias to an unknown anchor".into()),
                }
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                let Some(path) = self.child_path() else {
                    self.fail(line, "a mapping key must be a scalar".into());
                    return;
                };
                self.lines.entry(path.clone()).or_insert(line);
                let frame = if matches!(ev, Event::SequenceStart(..)) {
                    Frame::Seq {
                        items: Vec::new(),
                        anchor,
                        path,
                    }
                } else {
                    Frame::Map {
                        map: Map::new(),
                        key: None,
                        anchor,
                        path,
                        key_lines: HashMap::new(),
                        merged: Default::default(),
                    }
                };
                self.stack.push(frame);
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (v, anchor) = match self.stack.pop() {
                    Some(Frame::Seq { items, anchor, .. }) => (Value::Array(items), anchor),
                    Some(Frame::Map { map, anchor, .. }) => (Value::Object(map), anchor),
                    None => return,
                };
                if anchor > 0 {
                    self.anchors.insert(anchor, v.clone());
                }
                self.push_value(v, line);
            }
            Event::StreamStart | Event::StreamEnd | Event::Nothing => {}
        }
    }
}

/// Parses a YAML stream into its documents. Empty documents are dropped, as kubectl does.
/// Flow collections whose lines are indented less than their key (a closing `]` under its
/// key, as the Kubernetes docs write them) are read as Kubernetes' parser reads them.
pub fn parse_documents(text: &str) -> Result<Vec<Document>, YamlError> {
    match parse_strict(text) {
        Err(e) if e.message.contains("indentation") => match relax_flow_indentation(text) {
            Some(relaxed) => parse_strict(&relaxed).map_err(|_| e),
            None => Err(e),
        },
        r => r,
    }
}

/// Where a line's content starts, past its indentation and `- ` markers, and the column of
/// the last marker.
fn content_column(line: &str) -> (usize, Option<usize>) {
    let mut col = line.len() - line.trim_start_matches(' ').len();
    let mut dash = None;
    let mut rest = &line[col..];
    while let Some(r) = rest
        .strip_prefix("- ")
        .or_else(|| (rest == "-").then_some(""))
    {
        dash = Some(col);
        let spaces = r.len() - r.trim_start_matches(' ').len();
        col += rest.len() - r.len() + spaces;
        rest = &r[spaces..];
    }
    (col, dash)
}

/// Quotes and brackets of flow context, followed across lines.
#[derive(Default)]
struct FlowScan {
    depth: usize,
    quote: Option<char>,
}

impl FlowScan {
    fn open(&self) -> bool {
        self.depth > 0 || self.quote.is_some()
    }

    /// Follows `s` until the outermost collection closes (the rest is block context).
    fn scan(&mut self, s: &str) {
        let mut chars = s.chars().peekable();
        let mut prev = ' ';
        while let Some(c) = chars.next() {
            match self.quote {
                Some('"') if c == '\\' => {
                    chars.next();
                }
                Some('\'') if c == '\'' && chars.peek() == Some(&'\'') => {
                    chars.next();
                }
                Some(q) if c == q => self.quote = None,
                Some(_) => {}
                None => match c {
                    '#' if prev == ' ' || prev == '\t' => return,
                    '"' | '\'' => self.quote = Some(c),
                    '[' | '{' => self.depth += 1,
                    ']' | '}' => {
                        self.depth = self.depth.saturating_sub(1);
                        if self.depth == 0 {
                            return;
                        }
                    }
                    _ => {}
                },
            }
            prev = c;
        }
    }
}

/// Where the value of a block-context line's content starts: the content itself, or what
/// follows its key's `: `. `None` for a line with no value.
fn value_start(content: &str) -> Option<usize> {
    if content.starts_with(['[', '{', '|', '>', '"', '\'']) {
        return Some(0);
    }
    let b = content.as_bytes();
    let mut quote = None;
    for (i, &c) in b.iter().enumerate() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if (c == b'"' || c == b'\'') && i == 0 => quote = Some(c),
            None if c == b'#' && i > 0 && b[i - 1] == b' ' => return None,
            None if c == b':' && b.get(i + 1).is_none_or(|n| *n == b' ' || *n == b'\t') => {
                let rest = &content[i + 1..];
                return Some(i + 1 + (rest.len() - rest.trim_start().len()));
            }
            None => {}
        }
    }
    None
}

/// Indents every line that starts inside a flow collection (`[...]`, `{...}`) one column
/// past the key that opened it, which is all a strict YAML parser needs: inside a flow
/// collection indentation means nothing, and libyaml (Kubernetes' parser) ignores it there.
/// Block scalars are left as they are; no line is added or removed. `None` when no line
/// needed it.
fn relax_flow_indentation(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len() + 64);
    let mut flow = FlowScan::default();
    // The column flow lines must reach, while a collection is open.
    let mut floor = 0usize;
    // A block scalar's parent column: lines indented past it (or blank) are its text.
    let mut block: Option<usize> = None;
    let mut changed = false;
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        let indent = body.len() - body.trim_start_matches(' ').len();
        let blank = body.trim().is_empty();
        if let Some(parent) = block {
            if blank || indent > parent {
                out.push_str(line);
                continue;
            }
            block = None;
        }
        if flow.open() {
            if !blank && indent < floor {
                out.extend(std::iter::repeat_n(' ', floor - indent));
                changed = true;
            }
            out.push_str(line);
            flow.scan(body);
            continue;
        }
        out.push_str(line);
        let (col, dash) = content_column(body);
        let content = &body[col..];
        let Some(at) = value_start(content) else {
            continue;
        };
        let value = &content[at..];
        if value.starts_with(['[', '{']) {
            floor = col + 1;
            flow.scan(value);
        } else if value.starts_with(['"', '\'']) {
            flow.scan(value);
            floor = col + 1;
        } else {
            let head = value.split(" #").next().unwrap_or("").trim_end();
            let is_header = head.starts_with(['|', '>'])
                && head[1..]
                    .chars()
                    .all(|c| matches!(c, '-' | '+' | '0'..='9'));
            if is_header {
                block = Some(match (at, dash) {
                    (0, Some(d)) => d,
                    _ => col,
                });
            }
        }
    }
    changed.then_some(out)
}

fn parse_strict(text: &str) -> Result<Vec<Document>, YamlError> {
    let mut b = Builder::default();
    let mut parser = Parser::new_from_str(text);
    if let Err(e) = parser.load(&mut b, true) {
        return Err(YamlError {
            line: e.marker().line(),
            message: e.info().to_string(),
        });
    }
    if let Some(e) = b.error {
        return Err(e);
    }
    Ok(b.docs.into_iter().filter(|d| !d.value.is_null()).collect())
}

/// Writes a JSON value as block-style YAML, the way kubectl prints objects.
pub fn to_yaml(v: &Value) -> String {
    let mut out = String::new();
    emit(v, 0, &mut out, false);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

fn emit(v: &Value, indent: usize, out: &mut String, in_seq: bool) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(m) if !m.is_empty() => {
            let mut first = true;
            for (k, val) in m {
                if !(first && in_seq) {
                    out.push_str(&pad);
                }
                first = false;
                out.push_str(&scalar_str(k));
                out.push(':');
                emit_child(val, indent, out);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for item in a {
                out.push_str(&pad);
                out.push_str("- ");
                match item {
                    Value::Object(m) if !m.is_empty() => emit(item, indent + 2, out, true),
                    Value::Array(x) if !x.is_empty() => {
                        out.push('\n');
                        emit(item, indent + 2, out, false)
                    }
                    _ => {
                        out.push_str(&inline_scalar(item, indent + 2));
                        out.push('\n');
                    }
                }
            }
        }
        other => {
            out.push_str(&pad);
            out.push_str(&inline_scalar(other, indent));
            out.push('\n');
        }
    }
}

fn emit_child(val: &Value, indent: usize, out: &mut String) {
    match val {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            emit(val, indent + 2, out, false);
        }
        // kubectl does not indent a list under its key.
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            emit(val, indent, out, false);
        }
        _ => {
            out.push(' ');
            out.push_str(&inline_scalar(val, indent + 2));
            out.push('\n');
        }
    }
}

fn inline_scalar(v: &Value, indent: usize) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) if s.contains('\n') && !s.contains('\r') && s.trim_end() != "" => {
            let pad = " ".repeat(indent);
            let chomp = if s.ends_with("\n\n") {
                "+"
            } else if s.ends_with('\n') {
                ""
            } else {
                "-"
            };
            let lead = if s.starts_with(' ') { "2" } else { "" };
            let mut o = format!("|{lead}{chomp}");
            let body = s.strip_suffix('\n').unwrap_or(s);
            for line in body.split('\n') {
                o.push('\n');
                if !line.is_empty() {
                    o.push_str(&pad);
                    o.push_str(line);
                }
            }
            o
        }
        Value::String(s) => scalar_str(s),
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
    }
}

/// YAML 1.1 readers (go-yaml among them) take `2024-01-02...` for a timestamp.
fn looks_like_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 10
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[5..7].iter().all(u8::is_ascii_digit)
        && b[7] == b'-'
}

fn scalar_str(s: &str) -> String {
    let needs_quotes = s.is_empty()
        || !matches!(resolve_plain(s), Value::String(_))
        || s.starts_with([
            ' ', '-', '?', ':', ',', '[', ']', '{', '}', '#', '&', '*', '!', '|', '>', '\'', '"',
            '%', '@', '`',
        ])
        || s.ends_with([' ', ':'])
        || s.contains(": ")
        || s.contains(" #")
        || s.chars().any(|c| c.is_control())
        || matches!(
            s,
            "yes" | "no" | "on" | "off" | "y" | "n" | "Yes" | "No" | "On" | "Off"
        )
        || looks_like_timestamp(s);
    if needs_quotes {
        serde_json::to_string(s).expect("strings serialize")
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Flow collections indented under (or left of) their key, as libyaml (Kubernetes' and
    /// PyYAML's parser) reads them: the values here are PyYAML's.
    #[test]
    fn flow_collections_ignore_indentation_as_libyaml_does() {
        let cases = [
            // The Kubernetes docs' way: `]` in the column of its key.
            (
                "spec:\n  command: [\n    \"/bin/sh\", \"-c\"\n  ]\n",
                json!({"spec": {"command": ["/bin/sh", "-c"]}}),
            ),
            ("a:\n  b: [\n1, 2]\n", json!({"a": {"b": [1, 2]}})),
            ("- a: [\n  1]\n", json!([{"a": [1]}])),
            // Quotes and comments hide brackets; a block scalar's text is its own.
            (
                "a:\n  b: [ \"x # ]\", # c ]\n  'y'' ]'\n  ]\n",
                json!({"a": {"b": ["x # ]", "y' ]"]}}),
            ),
            (
                "a:\n  b: |\n    x [\n  c: [\n  1]\n",
                json!({"a": {"b": "x [\n", "c": [1]}}),
            ),
        ];
        for (text, want) in cases {
            let d = parse_documents(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert_eq!(d[0].value, want, "{text:?}");
        }
        // Lines keep their numbers; a real indentation error is still one.
        let d = parse_documents("a:\n  b: [\n  1\n  ]\n  c: 2\n").unwrap();
        assert_eq!(d[0].line_of("a.c"), 5);
        let e = parse_documents("a:\n  b: 1\n c: 2\n").unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        assert_eq!(relax_flow_indentation("a: [1, 2]\nb: |\n  [\n"), None);
    }

    #[test]
    fn documents_values_and_lines() {
        let text = "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n  labels:\n    app.kubernetes.io/name: web\nspec:\n  containers:\n  - name: c\n    image: busybox\n    ports:\n    - containerPort: 80\n---\n---\na: 1\n";
        let docs = parse_documents(text).unwrap();
        assert_eq!(docs.len(), 2);
        let d = &docs[0];
        assert_eq!(
            d.value["spec"]["containers"][0]["ports"][0]["containerPort"],
            json!(80)
        );
        assert_eq!(d.line_of("spec.containers[0].image"), 11);
        assert_eq!(d.line_of("spec.containers[0].ports[0].containerPort"), 13);
        assert_eq!(d.line_of("metadata.labels[app.kubernetes.io/name]"), 7);
        assert_eq!(d.line_of("spec.containers[0].missing"), 10);
        assert_eq!(docs[1].line_of("a"), 16);
    }

    #[test]
    fn core_schema_scalars() {
        let d = &parse_documents(
            "a: yes\nb: 0x10\nc: 1e7\nd: '80'\ne: ~\nf: .5\ng: !!str 12\nh: -3\ni: 1.0.0\n",
        )
        .unwrap()[0]
            .value;
        assert_eq!(d["a"], json!("yes"));
        assert_eq!(d["b"], json!(16));
        assert_eq!(d["c"], json!(10000000.0));
        assert_eq!(d["d"], json!("80"));
        assert_eq!(d["e"], Value::Null);
        assert_eq!(d["f"], json!(0.5));
        assert_eq!(d["g"], json!("12"));
        assert_eq!(d["h"], json!(-3));
        assert_eq!(d["i"], json!("1.0.0"));
        // YAML 1.1 octal, as Kubernetes reads file modes; 0 and 08 stay decimal.
        let d = &parse_documents("a: 0400\nb: 0\nc: 08\nd: 0o17\ne: -010\n").unwrap()[0].value;
        assert_eq!(d["a"], json!(256));
        assert_eq!(d["b"], json!(0));
        assert_eq!(d["c"], json!(8));
        assert_eq!(d["d"], json!(15));
        assert_eq!(d["e"], json!(-8));
    }

    #[test]
    fn anchors_merge_and_duplicates() {
        let d =
            &parse_documents("base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  y: 3\n").unwrap()[0].value;
        assert_eq!(d["other"], json!({"x": 1, "y": 3}));
        let e = parse_documents("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.message.contains("already defined at line 1"), "{e}");
        let e = parse_documents("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(e.line >= 1);
    }

    #[test]
    fn emitter_round_trips() {
        let v = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "x", "labels": {"a": "true", "b": "", "c": "x: y"}},
            "data": {"script": "#!/bin/sh\necho hi\n", "n": "0123", "s": "- dash", "k": "yes"},
            "list": [{"a": 1, "b": [1, 2]}, [3, 4], "s", {}, []],
            "empty": {}, "nil": null, "f": 1.5
        });
        let y = to_yaml(&v);
        let back = &parse_documents(&y).unwrap()[0].value;
        assert_eq!(back, &v, "yaml was:\n{y}");
    }
}

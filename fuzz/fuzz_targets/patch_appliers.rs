//! Any bytes as a JSON, merge or strategic merge patch of an object (the first byte picks
//! the kind and splits the rest into the object and the patch): an applier may refuse,
//! never panic, and what it returns is a JSON value that prints and reads back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skiff_coordinator::http::patch::{apply, PatchKind};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    let kind = match pick % 3 {
        0 => PatchKind::Json,
        1 => PatchKind::Merge,
        _ => PatchKind::Strategic,
    };
    // The target: the bytes up to the first NUL, when they are JSON; else a Deployment.
    let (target_bytes, patch) = match rest.iter().position(|b| *b == 0) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (&b""[..], rest),
    };
    let target: serde_json::Value = serde_json::from_slice(target_bytes).unwrap_or_else(|_| {
        serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i",
                "ports": [{"containerPort": 80}], "env": [{"name": "A", "value": "1"}]}]}}}})
    });
    if let Ok(out) = apply(kind, &target, patch) {
        let text = out.to_string();
        let back: serde_json::Value = serde_json::from_str(&text).expect("a patched object prints as JSON");
        assert_eq!(back, out);
    }
});

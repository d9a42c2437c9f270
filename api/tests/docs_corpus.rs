//! The Kubernetes documentation's example manifests (`tests/corpus/k8s-docs`, copied from
//! kubernetes/website `content/en/examples`; `SOURCES.md` names each file's commit), read
//! as `skiff apply` reads them: every document of a kind skiff serves parses and
//! validates, and the rest are refused naming the kind or the field (`EXPECT` says which,
//! for every file; a file without a line, or a line without a file, fails the test).

use skiff_api::manifest::parse_manifests;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/corpus/k8s-docs")
}

fn yaml_files(dir: &Path, base: &Path, out: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            yaml_files(&p, base, out);
        } else if p.extension().is_some_and(|x| x == "yaml") {
            out.push(p.strip_prefix(base).unwrap().display().to_string());
        }
    }
}

#[test]
fn the_docs_manifests_apply_or_name_what_skiff_refuses() {
    let root = corpus();
    let expect_text = std::fs::read_to_string(root.join("EXPECT")).unwrap();
    let mut expect = BTreeMap::new();
    for line in expect_text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
    {
        let (path, what) = line
            .split_once(": ")
            .expect("`path: applies|refused: text`");
        expect.insert(path.to_string(), what.to_string());
    }
    let mut files = Vec::new();
    yaml_files(&root, &root, &mut files);
    files.sort();
    let listed: Vec<&String> = expect.keys().collect();
    assert_eq!(
        files.iter().collect::<Vec<_>>(),
        listed,
        "EXPECT lists every file"
    );
    let mut failures = Vec::new();
    let (mut applied, mut refused) = (0, 0);
    for f in &files {
        let text = std::fs::read_to_string(root.join(f)).unwrap();
        let got = parse_manifests(&text);
        match (expect[f].as_str(), &got) {
            ("applies", Ok(docs)) => applied += docs.len(),
            (want, Err(e)) if want.starts_with("refused: ") => {
                let needle = &want["refused: ".len()..];
                if e.to_string().contains(needle) {
                    refused += 1;
                } else {
                    failures.push(format!("{f}: refused, but without {needle:?}: {e}"));
                }
            }
            (want, Ok(_)) => failures.push(format!("{f}: applies, expected {want}")),
            (want, Err(e)) => failures.push(format!("{f}: expected {want}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    println!("{applied} documents apply; {refused} files are refused, naming why");
}

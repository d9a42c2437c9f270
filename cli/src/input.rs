//! Reading `-f FILE|DIR|-`: every document is parsed and validated before anything is sent.

use anyhow::{bail, Context};
use skiff_api::manifest::{parse_manifests, Manifest};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Reads every manifest named by `-f` arguments. Fails (listing every problem) unless
/// all documents of all files are valid.
pub fn read_manifests(sources: &[String]) -> anyhow::Result<Vec<Manifest>> {
    if sources.is_empty() {
        bail!("must specify one of -f and -k (hint: skiff apply -f app.yaml)");
    }
    let mut files: Vec<(String, String)> = Vec::new();
    for s in sources {
        if s == "-" {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("reading standard input")?;
            files.push(("<stdin>".into(), text));
            continue;
        }
        let p = Path::new(s);
        if p.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("reading directory {s}"))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    matches!(
                        p.extension().and_then(|e| e.to_str()),
                        Some("yaml" | "yml" | "json")
                    )
                })
                .collect();
            entries.sort();
            if entries.is_empty() {
                bail!("{s}: no .yaml, .yml or .json files in this directory");
            }
            for e in entries {
                let text = std::fs::read_to_string(&e)
                    .with_context(|| format!("reading {}", e.display()))?;
                files.push((e.display().to_string(), text));
            }
        } else {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("the path {s:?} cannot be read"))?;
            files.push((s.clone(), text));
        }
    }
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (name, text) in files {
        match parse_manifests(&text) {
            Ok(mut m) => {
                for x in &mut m {
                    x.warnings
                        .iter_mut()
                        .for_each(|w| *w = format!("{name}: {w}"));
                }
                out.extend(m);
            }
            Err(e) => errors.extend(e.errors.into_iter().map(|x| format!("{name}: {x}"))),
        }
    }
    if !errors.is_empty() {
        bail!("{}\nnothing was applied", errors.join("\n"));
    }
    if out.is_empty() {
        bail!("no objects passed to the command");
    }
    Ok(out)
}

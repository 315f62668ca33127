//! The one-way flow of ARCHITECTURE.md, checked on the source: every `crate::<module>` a file of `src/` names
//! is a module of a lower layer than its own, so no import runs backwards and there is no cycle between the
//! top-level modules; and inside a folder, sibling files never import each other both ways.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each top-level module of `src/` and its layer: a module may name only modules of lower layers.
const LAYERS: &[(&str, u8)] = &[
    ("model", 0),
    ("error", 0),
    ("warn", 0),
    ("publishing", 0),
    ("config", 1),
    ("store", 2),
    ("frontend", 3),
    ("sink", 3),
    ("exporter", 4),
    ("counters", 5),
    ("install", 6),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The names that follow `prefix` in `text` (`crate::store::cell` with prefix `crate::` gives `store`).
fn names_after<'a>(text: &'a str, prefix: &str) -> BTreeSet<&'a str> {
    text.match_indices(prefix)
        .map(|(i, _)| {
            let rest = &text[i + prefix.len()..];
            let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
            &rest[..end]
        })
        .filter(|name| !name.is_empty())
        .collect()
}

/// The source without comments (doc links may name any module).
fn code_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("a source file is readable");
    text.lines().map(|l| l.split("//").next().unwrap_or_default()).collect::<Vec<_>>().join("\n")
}

#[test]
fn imports_flow_one_way_between_the_top_level_modules() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let layers: BTreeMap<&str, u8> = LAYERS.iter().copied().collect();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut backwards = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).expect("under src/");
        let top = relative.components().next().expect("a component").as_os_str().to_string_lossy();
        let top = top.trim_end_matches(".rs");
        if top == "lib" {
            continue;
        }
        let own =
            *layers.get(top).unwrap_or_else(|| panic!("{top} (src/{}) has no layer in LAYERS", relative.display()));
        for used in names_after(&code_of(file), "crate::") {
            if used == top {
                continue;
            }
            let Some(&theirs) = layers.get(used) else { continue };
            if theirs >= own {
                backwards
                    .push(format!("src/{} ({top}, layer {own}) imports {used} (layer {theirs})", relative.display()));
            }
        }
    }
    assert!(backwards.is_empty(), "imports against the flow:\n{}", backwards.join("\n"));
    assert!(files.len() > 20, "the walk found the sources");
}

#[test]
fn sibling_files_never_import_each_other_both_ways() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut edges = BTreeSet::new();
    for file in &files {
        let (Some(dir), Some(stem)) = (file.parent(), file.file_stem()) else { continue };
        let stem = stem.to_string_lossy().into_owned();
        if stem == "mod" || stem == "lib" {
            continue;
        }
        let code = code_of(file);
        let siblings: BTreeSet<String> = std::fs::read_dir(dir)
            .expect("readable")
            .filter_map(|e| e.ok()?.path().file_stem().map(|s| s.to_string_lossy().into_owned()))
            .filter(|s| *s != stem && s != "mod")
            .collect();
        for used in names_after(&code, "super::") {
            if siblings.contains(used) {
                edges.insert((dir.join(&stem), dir.join(used)));
            }
        }
    }
    let cycles: Vec<String> = edges
        .iter()
        .filter(|(a, b)| edges.contains(&(b.clone(), a.clone())))
        .map(|(a, b)| format!("{} <-> {}", a.display(), b.display()))
        .collect();
    assert!(cycles.is_empty(), "sibling files import each other: {cycles:?}");
}

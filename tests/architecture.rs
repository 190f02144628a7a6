//! The layering of the library, checked from its source.
//!
//! Every `.rs` file under `src/` (except the binary: `main.rs` and `cli/`)
//! belongs to a top-level module, the first name after `src/`. A module
//! depends on another when one of its files names it through a
//! `crate::other` path (in a `use` line or in code, grouped imports such as
//! `crate::{a::X, b}` included) or through `super::other` where `super` is
//! the crate root. Comments do not count. `crate::Error`-style paths count
//! for the module `lib.rs` re-exports them from.
//!
//! The checks: no dependency in [`FORBIDDEN`], nothing at all from a module
//! in [`LEAVES`], and no cycle among the top-level modules. ARCHITECTURE.md
//! explains the layers these rules keep.
//!
//! The reader is textual on purpose: small enough to read in one sitting.
//! It does not track inline modules, so a `super::x` inside `mod tests { … }`
//! of a top-level file is read as `crate::x`; that can only report too much,
//! never hide a dependency.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Dependencies that break the layering, with the reason.
const FORBIDDEN: &[(&str, &str, &str)] = &[
    ("store", "providers", "`store` knows nothing about HTTP"),
    (
        "store",
        "import",
        "`store` does not know the legacy formats",
    ),
    ("store", "manager", "`store` is below the manager"),
    (
        "import",
        "providers",
        "an import works offline and never calls a provider",
    ),
    ("import", "manager", "`import` is below the manager"),
    ("providers", "store", "`providers` never touches SQL"),
    (
        "providers",
        "import",
        "`providers` does not know the legacy formats",
    ),
    ("providers", "manager", "`providers` is below the manager"),
    ("keys", "store", "`keys` is below `store`"),
    ("db", "store", "`db` never interprets rows"),
    (
        "selector",
        "store",
        "`selector` is pure: the manager reads the store",
    ),
    (
        "selector",
        "providers",
        "`selector` is pure: the manager asks providers",
    ),
    ("selector", "db", "`selector` is pure: no SQL"),
    ("selector", "keys", "`selector` is pure: no keys"),
    (
        "selector",
        "import",
        "`selector` is pure: legacy preferences arrive as settings",
    ),
    ("selector", "manager", "`selector` is below the manager"),
    (
        "agent",
        "store",
        "`agent` runs processes and files: the manager reads and writes the store",
    ),
    ("agent", "providers", "`agent` never calls a provider"),
    ("agent", "manager", "`agent` is below the manager"),
];

/// Modules that depend on no other module of the crate.
const LEAVES: &[(&str, &str)] = &[
    (
        "crypto",
        "`crypto` is the bottom layer: ciphers and MACs only",
    ),
    (
        "jwt",
        "`jwt` decodes tokens for both `import` and `providers`",
    ),
];

/// One dependency: `file` (relative to `src/`), at `line`, names module `to`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Edge {
    from: String,
    to: String,
    file: String,
    line: usize,
}

#[test]
fn the_library_keeps_its_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    collect_rs_files(&src, &mut files);
    let files: Vec<(String, String)> = files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("read a source file");
            let relative = path.strip_prefix(&src).expect("under src/");
            (relative.to_string_lossy().replace('\\', "/"), text)
        })
        .collect();
    let lib = files
        .iter()
        .find(|(name, _)| name == "lib.rs")
        .map(|(_, text)| text.as_str())
        .expect("src/lib.rs");
    assert!(
        top_level_modules(lib).len() >= 10,
        "the reader found too few modules in lib.rs: {:?}",
        top_level_modules(lib)
    );
    let edges = edges(&files);
    assert!(!edges.is_empty(), "the reader found no dependency at all");
    let violations = violations(&edges);
    assert!(
        violations.is_empty(),
        "the module layering is broken:\n{}",
        violations.join("\n")
    );
}

fn collect_rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read a source directory") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            collect_rs_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

/// The names `lib.rs` declares with `mod`.
fn top_level_modules(lib: &str) -> BTreeSet<String> {
    lib.lines()
        .filter_map(|line| {
            let line = line.trim();
            let rest = line
                .strip_prefix("pub mod ")
                .or_else(|| line.strip_prefix("mod "))?;
            Some(rest.strip_suffix(';')?.trim().to_owned())
        })
        .collect()
}

/// `pub use module::{A, B};` in `lib.rs`: name → module.
fn reexports(lib: &str) -> BTreeMap<String, String> {
    let mut names = BTreeMap::new();
    for line in lib.lines() {
        let Some(rest) = line.trim().strip_prefix("pub use ") else {
            continue;
        };
        let Some((module, items)) = rest.trim_end_matches(';').split_once("::") else {
            continue;
        };
        for item in items.trim_matches(['{', '}']).split(',') {
            let name = item.rsplit(" as ").next().unwrap_or(item).trim();
            names.insert(name.to_owned(), module.to_owned());
        }
    }
    names
}

/// Every dependency between top-level modules that `files` (path relative
/// to `src/`, text) show, self-dependencies left out.
fn edges(files: &[(String, String)]) -> Vec<Edge> {
    let lib = files
        .iter()
        .find(|(name, _)| name == "lib.rs")
        .map_or("", |(_, text)| text.as_str());
    let modules = top_level_modules(lib);
    let reexports = reexports(lib);
    let mut edges = BTreeSet::new();
    for (file, text) in files {
        let Some(path) = module_path(file) else {
            continue;
        };
        let from = &path[0];
        for (name, line) in root_names(&path, text) {
            let to = reexports.get(&name).unwrap_or(&name);
            if modules.contains(to) && to != from {
                edges.insert(Edge {
                    from: from.clone(),
                    to: to.clone(),
                    file: file.clone(),
                    line,
                });
            }
        }
    }
    edges.into_iter().collect()
}

/// `store/refresh.rs` → `[store, refresh]`, `store/mod.rs` → `[store]`;
/// `None` for the crate root and the binary.
fn module_path(file: &str) -> Option<Vec<String>> {
    let mut path: Vec<String> = file
        .trim_end_matches(".rs")
        .split('/')
        .map(str::to_owned)
        .collect();
    if path.last().is_some_and(|last| last == "mod") {
        path.pop();
    }
    match path.first().map(String::as_str) {
        None | Some("lib" | "main" | "cli") => None,
        Some(_) => Some(path),
    }
}

/// Each name that `text`, the file of module `path`, reaches at the crate
/// root, with its line number.
fn root_names(path: &[String], text: &str) -> Vec<(String, usize)> {
    let code = without_comments(text);
    let mut names = Vec::new();
    for start in path_starts(&code) {
        let mut rest = &code[start..];
        let at_root = if let Some(after) = rest.strip_prefix("crate::") {
            rest = after;
            true
        } else {
            let mut depth = 0;
            while let Some(after) = rest.strip_prefix("super::") {
                rest = after;
                depth += 1;
            }
            depth == path.len()
        };
        if !at_root {
            continue;
        }
        let line = code[..start].matches('\n').count() + 1;
        names.extend(first_segments(rest).into_iter().map(|name| (name, line)));
    }
    names
}

/// Each line cut at `//`; line breaks kept, so line numbers stay true.
fn without_comments(text: &str) -> String {
    text.lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Byte offsets where a `crate::` or `super::` path begins (not inside a
/// longer path such as `a::super::`, an identifier or `$crate`).
fn path_starts(code: &str) -> Vec<usize> {
    let mut starts: Vec<usize> = ["crate::", "super::"]
        .iter()
        .flat_map(|word| code.match_indices(word).map(|(at, _)| at))
        .filter(|&at| {
            code[..at]
                .chars()
                .next_back()
                .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '$' || c == ':'))
        })
        .collect();
    starts.sort_unstable();
    starts
}

/// The first name of the path that `rest` begins with: `x` of `x::Y`, or
/// every item's first name of a group `{a::X, b, c::{D, E}}`.
fn first_segments(rest: &str) -> Vec<String> {
    let ident = |text: &str| -> String {
        text.trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let Some(group) = rest.strip_prefix('{') else {
        return vec![ident(rest)];
    };
    let mut items = Vec::new();
    let (mut depth, mut item_start) = (0, 0);
    for (at, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                items.push(ident(&group[item_start..at]));
                break;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(ident(&group[item_start..at]));
                item_start = at + 1;
            }
            _ => {}
        }
    }
    items.retain(|item| !item.is_empty() && item != "self");
    items
}

/// Every broken rule, one line each, naming the file and line.
fn violations(edges: &[Edge]) -> Vec<String> {
    let mut found = Vec::new();
    for edge in edges {
        let forbidden = FORBIDDEN
            .iter()
            .find(|(from, to, _)| *from == edge.from && *to == edge.to)
            .map(|(_, _, why)| *why)
            .or_else(|| {
                LEAVES
                    .iter()
                    .find(|(leaf, _)| *leaf == edge.from)
                    .map(|(_, why)| *why)
            });
        if let Some(why) = forbidden {
            found.push(format!(
                "src/{}:{}: {} → {}: {why}",
                edge.file, edge.line, edge.from, edge.to
            ));
        }
    }
    if let Some(cycle) = find_cycle(edges) {
        let mut line = format!("cycle: {}", cycle.join(" → "));
        for pair in cycle.windows(2) {
            let edge = edges
                .iter()
                .find(|e| e.from == pair[0] && e.to == pair[1])
                .expect("a cycle follows edges");
            let _ = write!(
                line,
                "\n  {} → {} at src/{}:{}",
                edge.from, edge.to, edge.file, edge.line
            );
        }
        found.push(line);
    }
    found
}

/// A cycle among the modules, as `[a, b, …, a]`, if there is one.
fn find_cycle(edges: &[Edge]) -> Option<Vec<String>> {
    let mut graph: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for edge in edges {
        graph.entry(&edge.from).or_default().insert(&edge.to);
    }
    let mut done = BTreeSet::new();
    for &start in graph.keys() {
        let mut stack = vec![start];
        if let Some(cycle) = visit(&graph, &mut stack, &mut done) {
            return Some(cycle);
        }
    }
    None
}

/// Depth-first search from the top of `stack`; `done` holds modules from
/// which no cycle is reachable.
fn visit<'a>(
    graph: &BTreeMap<&'a str, BTreeSet<&'a str>>,
    stack: &mut Vec<&'a str>,
    done: &mut BTreeSet<&'a str>,
) -> Option<Vec<String>> {
    let node = *stack.last().expect("a non-empty stack");
    if done.contains(node) {
        return None;
    }
    for &next in graph.get(node).into_iter().flatten() {
        if let Some(at) = stack.iter().position(|&n| n == next) {
            let mut cycle: Vec<String> = stack[at..].iter().map(|&n| n.to_owned()).collect();
            cycle.push(next.to_owned());
            return Some(cycle);
        }
        stack.push(next);
        let found = visit(graph, stack, done);
        stack.pop();
        if found.is_some() {
            return found;
        }
    }
    done.insert(node);
    None
}

// ---------------------------------------------------------------------------
// The checker itself, on synthetic sources
// ---------------------------------------------------------------------------

const LIB: &str = "pub mod crypto;\npub mod error;\npub mod providers;\npub mod store;\n\
                   pub use error::{Error, Result};\n";

fn synthetic(files: &[(&str, &str)]) -> Vec<String> {
    let mut all = vec![("lib.rs".to_owned(), LIB.to_owned())];
    all.extend(
        files
            .iter()
            .map(|(f, t)| ((*f).to_owned(), (*t).to_owned())),
    );
    violations(&edges(&all))
}

#[test]
fn a_forbidden_use_line_is_reported_with_its_place() {
    let found = synthetic(&[(
        "store/refresh.rs",
        "//! Refresh.\n\nuse crate::providers::Foo;\n",
    )]);
    assert_eq!(
        found,
        ["src/store/refresh.rs:3: store → providers: `store` knows nothing about HTTP"]
    );
}

#[test]
fn every_way_of_naming_a_module_counts_and_comments_do_not() {
    let cases = [
        ("store.rs", "use crate::{crypto::Key, providers::{A, B}};"),
        ("store.rs", "use super::providers::Foo;"),
        ("store/audit.rs", "use super::super::providers::Foo;"),
        ("store/mod.rs", "fn f() { crate::providers::call(); }"),
        (
            "store/mod.rs",
            "use crate::{\n    crypto,\n    providers,\n};",
        ),
    ];
    for (file, text) in cases {
        assert_eq!(synthetic(&[(file, text)]).len(), 1, "{file}: {text}");
    }
    let harmless = [
        (
            "store/mod.rs",
            "// crate::providers::Foo is only mentioned\n/// [`crate::providers`]",
        ),
        (
            "store/audit.rs",
            "use super::providers::Foo; // store::providers, not the crate's",
        ),
        (
            "store.rs",
            "macro_rules! m { () => { $crate::providers::x() } }",
        ),
    ];
    for (file, text) in harmless {
        assert_eq!(
            synthetic(&[(file, text)]),
            Vec::<String>::new(),
            "{file}: {text}"
        );
    }
}

#[test]
fn a_leaf_may_use_nothing_and_reexports_name_their_module() {
    assert_eq!(
        synthetic(&[("crypto.rs", "use crate::Error;")]),
        ["src/crypto.rs:1: crypto → error: `crypto` is the bottom layer: ciphers and MACs only"]
    );
}

#[test]
fn a_cycle_is_reported_with_the_lines_that_make_it() {
    let found = synthetic(&[
        ("error.rs", "use crate::providers::ProviderError;"),
        ("providers/mod.rs", "\nuse crate::Result;"),
    ]);
    assert_eq!(
        found,
        ["cycle: error → providers → error\n  \
          error → providers at src/error.rs:1\n  \
          providers → error at src/providers/mod.rs:2"]
    );
    assert_eq!(
        synthetic(&[("error.rs", "use crate::providers::ProviderError;")]),
        Vec::<String>::new()
    );
}

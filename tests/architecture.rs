//! The architecture, checked: the crates' module graphs have no cycles, the core crate depends on
//! nothing that does I/O and reads no clock, and no source file outgrows ~800 lines.
//!
//! Module graph rule: module A depends on module B when A's code names a path into B (`use`
//! trees expanded, other `a::b::c` paths as written). Each file is a module and so is each inline
//! `mod name { .. }` block (test modules included). A path to one of A's own ancestors is not
//! counted: a child reading the types its parent defines is what nesting is for. Everything else
//! counts, a parent's `pub use child::X` included, so `parent -> child -> parent` is a cycle.
//! Crates cannot import each other both ways (cargo refuses), so each crate is checked alone.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every crate's source root, and the modules the check skips (binaries are leaves).
const CRATE_SRC: &[&str] =
    &["crates/core/src", "crates/bybit/src", "crates/sim/src", "crates/storage/src", "crates/control/src", "src"];

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Colons,
    Open,
    Close,
    Comma,
    Star,
    Other,
}

/// Tokens of `src` without comments, strings, char literals or lifetimes.
fn tokens(src: &str) -> Vec<Tok> {
    let b = src.as_bytes();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == b'/' && next == Some(b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'/' && next == Some(b'*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == b'r' && matches!(next, Some(b'#' | b'"')) && (i == 0 || !ident(b[i - 1])) {
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&b'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&b'"') {
                out.push(Tok::Ident("r".into()));
                i += 1;
                continue;
            }
            j += 1;
            while j < b.len() && !(b[j] == b'"' && (0..hashes).all(|k| b.get(j + 1 + k) == Some(&b'#'))) {
                j += 1;
            }
            i = j + 1 + hashes;
        } else if c == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
        } else if c == b'\'' {
            if b.get(i + 2) == Some(&b'\'') {
                i += 3;
            } else if next == Some(b'\\') {
                i += 2;
                while i < b.len() && b[i] != b'\'' {
                    i += 1;
                }
                i += 1;
            } else {
                i += 1;
                while i < b.len() && ident(b[i]) {
                    i += 1;
                }
            }
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let s = i;
            while i < b.len() && ident(b[i]) {
                i += 1;
            }
            out.push(Tok::Ident(src[s..i].to_string()));
        } else if c.is_ascii_whitespace() {
            i += 1;
        } else {
            out.push(match c {
                b':' if next == Some(b':') => {
                    i += 1;
                    Tok::Colons
                }
                b'{' => Tok::Open,
                b'}' => Tok::Close,
                b',' => Tok::Comma,
                b'*' => Tok::Star,
                _ => Tok::Other,
            });
            i += 1;
        }
    }
    out
}

/// Expands the use tree at `t[i]` under `prefix` into `out`; returns the index after it.
fn use_tree(t: &[Tok], mut i: usize, mut prefix: Vec<String>, out: &mut Vec<Vec<String>>) -> usize {
    loop {
        match t.get(i) {
            Some(Tok::Ident(s)) if s == "as" => i += 2,
            Some(Tok::Ident(s)) => {
                prefix.push(s.clone());
                i += 1;
            }
            Some(Tok::Star | Tok::Colons) => i += 1,
            Some(Tok::Open) => {
                i += 1;
                loop {
                    match t.get(i) {
                        Some(Tok::Close) => return i + 1,
                        Some(Tok::Comma) => i += 1,
                        None => return i,
                        _ => i = use_tree(t, i, prefix.clone(), out),
                    }
                }
            }
            _ => {
                out.push(prefix);
                return i;
            }
        }
    }
}

type ModPath = Vec<String>;

/// The paths written in one file, each with the module (file or inline `mod`) it is written in.
fn written_paths(t: &[Tok], file_mod: &ModPath) -> Vec<(ModPath, ModPath)> {
    let mut out = Vec::new();
    // Open inline modules with the brace depth at which each closes.
    let mut scopes: Vec<(ModPath, usize)> = vec![(file_mod.clone(), usize::MAX)];
    let mut depth = 0usize;
    let mut i = 0;
    while i < t.len() {
        let cur = scopes.last().map(|s| s.0.clone()).unwrap_or_default();
        match &t[i] {
            Tok::Open => depth += 1,
            Tok::Close => {
                depth = depth.saturating_sub(1);
                if scopes.len() > 1 && scopes.last().map(|s| s.1) == Some(depth) {
                    scopes.pop();
                }
            }
            Tok::Ident(k) if k == "mod" => {
                if let (Some(Tok::Ident(name)), Some(Tok::Open)) = (t.get(i + 1), t.get(i + 2)) {
                    let mut m = cur.clone();
                    m.push(name.clone());
                    scopes.push((m, depth));
                    depth += 1;
                    i += 3;
                    continue;
                }
            }
            Tok::Ident(k) if k == "use" => {
                let mut trees = Vec::new();
                i = use_tree(t, i + 1, Vec::new(), &mut trees);
                out.extend(trees.into_iter().map(|p| (cur.clone(), p)));
                continue;
            }
            Tok::Ident(s) if t.get(i + 1) == Some(&Tok::Colons) && (i == 0 || t[i - 1] != Tok::Colons) => {
                let mut p = vec![s.clone()];
                let mut j = i + 1;
                while t.get(j) == Some(&Tok::Colons) {
                    let Some(Tok::Ident(n)) = t.get(j + 1) else { break };
                    p.push(n.clone());
                    j += 2;
                }
                out.push((cur, p));
                i = j;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n != "target") {
                rust_files(&p, out);
            }
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn module_of(src_root: &Path, file: &Path) -> ModPath {
    let rel = file.strip_prefix(src_root).unwrap_or(file);
    let mut m: ModPath = rel.iter().map(|c| c.to_string_lossy().into_owned()).collect();
    let stem = m.pop().unwrap_or_default().trim_end_matches(".rs").to_string();
    if stem != "mod" && stem != "lib" {
        m.push(stem);
    }
    m
}

/// The crate's module dependency graph (edges to a module's own ancestors left out).
fn module_graph(src_root: &Path) -> BTreeMap<ModPath, BTreeSet<ModPath>> {
    let mut files = Vec::new();
    rust_files(src_root, &mut files);
    files.retain(|f| !f.strip_prefix(src_root).is_ok_and(|r| r.starts_with("bin")));
    let mut modules: BTreeSet<ModPath> = BTreeSet::new();
    let mut written = Vec::new();
    for f in &files {
        let m = module_of(src_root, f);
        let src = fs::read_to_string(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        for (inner, p) in written_paths(&tokens(&src), &m) {
            modules.insert(inner.clone());
            written.push((inner, p));
        }
        modules.insert(m);
    }
    let mut graph: BTreeMap<ModPath, BTreeSet<ModPath>> =
        modules.iter().map(|m| (m.clone(), BTreeSet::new())).collect();
    for (m, p) in written {
        let abs: ModPath = match p.first().map(String::as_str) {
            Some("crate") => p[1..].to_vec(),
            Some("super") => {
                let ups = p.iter().take_while(|s| *s == "super").count();
                let mut base = m[..m.len().saturating_sub(ups)].to_vec();
                base.extend_from_slice(&p[ups..]);
                base
            }
            Some("self") => [m.clone(), p[1..].to_vec()].concat(),
            Some(first) => {
                let child = [m.clone(), vec![first.to_string()]].concat();
                if !modules.contains(&child) {
                    continue;
                }
                [m.clone(), p.clone()].concat()
            }
            None => continue,
        };
        let mut k = abs.len();
        while k > 0 && !modules.contains(&abs[..k]) {
            k -= 1;
        }
        let target = abs[..k].to_vec();
        if !m.starts_with(&target) {
            graph.entry(m).or_default().insert(target);
        }
    }
    graph
}

/// Strongly connected components with more than one module (Tarjan).
fn cycles(graph: &BTreeMap<ModPath, BTreeSet<ModPath>>) -> Vec<Vec<ModPath>> {
    struct Walk<'a> {
        adj: Vec<Vec<usize>>,
        names: Vec<&'a ModPath>,
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on_stack: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        found: Vec<Vec<ModPath>>,
    }
    impl Walk<'_> {
        fn visit(&mut self, v: usize) {
            self.index[v] = Some(self.next);
            self.low[v] = self.next;
            self.next += 1;
            self.stack.push(v);
            self.on_stack[v] = true;
            for w in self.adj[v].clone() {
                match self.index[w] {
                    None => {
                        self.visit(w);
                        self.low[v] = self.low[v].min(self.low[w]);
                    }
                    Some(iw) if self.on_stack[w] => self.low[v] = self.low[v].min(iw),
                    Some(_) => {}
                }
            }
            if Some(self.low[v]) == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack[w] = false;
                    component.push(self.names[w].clone());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    self.found.push(component);
                }
            }
        }
    }
    let names: Vec<&ModPath> = graph.keys().collect();
    let id: BTreeMap<&ModPath, usize> = names.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let adj = names.iter().map(|n| graph[*n].iter().filter_map(|t| id.get(t).copied()).collect()).collect();
    let n = names.len();
    let mut w = Walk {
        adj,
        names,
        index: vec![None; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        stack: Vec::new(),
        next: 0,
        found: Vec::new(),
    };
    for v in 0..n {
        if w.index[v].is_none() {
            w.visit(v);
        }
    }
    w.found
}

fn show(m: &ModPath) -> String {
    if m.is_empty() {
        "crate".into()
    } else {
        m.join("::")
    }
}

#[test]
fn no_module_imports_a_module_that_imports_it_back() {
    let mut report = String::new();
    for src in CRATE_SRC {
        let graph = module_graph(&repo().join(src));
        assert!(graph.len() > 3, "{src}: no modules found");
        for c in cycles(&graph) {
            report += &format!("\n{src}: cycle through {} modules:", c.len());
            let members: BTreeSet<&ModPath> = c.iter().collect();
            for m in &c {
                let into: Vec<String> = graph[m].iter().filter(|t| members.contains(t)).map(show).collect();
                report += &format!("\n  {} -> {}", show(m), into.join(", "));
            }
        }
    }
    assert!(report.is_empty(), "import cycles:{report}");
}

#[test]
fn the_cycle_check_sees_a_cycle() {
    let dir = tempfile::tempdir().unwrap();
    let w = |name: &str, body: &str| fs::write(dir.path().join(name), body).unwrap();
    w("lib.rs", "mod a;\nmod b;\nmod c;\nmod d;\n");
    w("a.rs", "use crate::b::B;\npub struct A;\n");
    w("b.rs", "pub struct B(crate::c::C);\n");
    w("c.rs", "use crate::{d::D, a::A};\npub struct C;\n// use crate::d::Nope;\n");
    w("d.rs", "pub struct D;\n#[cfg(test)]\nmod tests {\n    use super::*;\n    use crate::a::A;\n}\n");
    let graph = module_graph(dir.path());
    let found = cycles(&graph);
    assert_eq!(found.len(), 1, "{found:?}");
    let names: BTreeSet<String> = found[0].iter().map(show).collect();
    assert_eq!(names, ["a", "b", "c"].iter().map(|s| s.to_string()).collect());
    // d's test module reaches a, and nothing reaches d's test module back: no cycle there.
    assert!(graph[&vec!["d".to_string(), "tests".to_string()]].contains(&vec!["a".to_string()]));
}

/// The `[dependencies]` names of a manifest.
fn dependencies(manifest: &str) -> Vec<String> {
    let mut in_deps = false;
    let mut names = Vec::new();
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_deps = line == "[dependencies]";
        } else if in_deps && !line.is_empty() && !line.starts_with('#') {
            let name = line.split(['=', '.']).next().unwrap_or("").trim();
            names.push(name.to_string());
        }
    }
    names
}

#[test]
fn the_core_crate_does_no_io_and_reads_no_clock() {
    let manifest = fs::read_to_string(repo().join("crates/core/Cargo.toml")).unwrap();
    let deps = dependencies(&manifest);
    assert!(deps.contains(&"serde".to_string()), "parsed {deps:?}");
    const ALLOWED: &[&str] = &["serde", "serde_json", "thiserror", "tracing", "rand"];
    for d in &deps {
        assert!(
            ALLOWED.contains(&d.as_str()),
            "scalper-core must not depend on {d} (I/O or runtime crates stay at the edges)"
        );
    }
    let mut files = Vec::new();
    rust_files(&repo().join("crates/core/src"), &mut files);
    assert!(files.len() > 50);
    const FORBIDDEN: &[&str] = &[
        "std::fs",
        // Addresses are plain values (the config validates them); sockets and name lookup are I/O.
        "TcpStream",
        "TcpListener",
        "UdpSocket",
        "to_socket_addrs",
        "std::thread",
        "std::process",
        "std::env",
        "std::io::stdin",
        "Instant::now",
        "SystemTime",
        "File::open",
        "File::create",
        "tokio::",
    ];
    let mut found = Vec::new();
    for f in &files {
        let src = fs::read_to_string(f).unwrap();
        for (n, line) in src.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for bad in FORBIDDEN {
                if code.contains(bad) {
                    found.push(format!("{}:{}: {}", f.display(), n + 1, line.trim()));
                }
            }
        }
    }
    assert!(found.is_empty(), "I/O or a clock read in the core:\n{}", found.join("\n"));
}

#[test]
fn no_source_file_is_over_800_lines() {
    let mut files = Vec::new();
    for dir in ["src", "crates", "tests", "benches"] {
        rust_files(&repo().join(dir), &mut files);
    }
    assert!(files.len() > 100);
    let mut long: Vec<String> = files
        .iter()
        .filter(|f| !f.components().any(|c| c.as_os_str() == "hftbacktest-compare" || c.as_os_str() == "target"))
        .filter_map(|f| {
            let n = fs::read_to_string(f).unwrap().lines().count();
            (n > 800).then(|| format!("{} ({n} lines)", f.display()))
        })
        .collect();
    long.sort();
    assert!(long.is_empty(), "split these by responsibility:\n{}", long.join("\n"));
}

//! The workspace's module graph, read from its sources, for the rules of
//! docs/architecture.md: no import cycle between the modules of any crate.
//!
//! A module is a file (`foo.rs` or `foo/mod.rs`) reached from a crate root (`lib.rs` or
//! `main.rs`) through `mod` declarations. A module depends on another when its code (tests
//! excluded: the `#[cfg(test)] mod tests` block at the end of a file) names a path into it:
//! `crate::…`, `super::…`, `self::…`, or a child module by its bare name. Declaring a child
//! (`mod child;`) is not a dependency; re-exporting from it (`pub use child::X;`) is.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One crate's modules and the dependencies between them.
#[derive(Debug, Default)]
pub struct ModuleGraph {
    /// Module path (`""` for the root, `store::dynamo`) → its file.
    pub files: BTreeMap<String, PathBuf>,
    /// Module → the modules it names, each with one line that names it (for the report).
    pub edges: BTreeMap<String, BTreeMap<String, String>>,
}

impl ModuleGraph {
    /// The graph of the crate whose root file is `root` (`…/src/lib.rs`).
    pub fn of_crate(root: &Path) -> Self {
        let mut graph = Self::default();
        let mut pending = vec![(String::new(), root.to_path_buf())];
        while let Some((module, file)) = pending.pop() {
            let text = std::fs::read_to_string(&file)
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            let code = without_tests(&without_comments(&text));
            for child in declared_modules(&code) {
                let child_file = child_file(&file, &child)
                    .unwrap_or_else(|| panic!("{}: mod {child} has no file", file.display()));
                pending.push((join(&module, &child), child_file));
            }
            graph.files.insert(module, file);
        }
        let modules: BTreeSet<String> = graph.files.keys().cloned().collect();
        for (module, file) in &graph.files {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            let code = without_tests(&without_comments(&text));
            let mut edges = BTreeMap::new();
            for (target, line) in references(&code, module, &modules) {
                if &target != module {
                    edges.entry(target).or_insert(line);
                }
            }
            graph.edges.insert(module.clone(), edges);
        }
        graph
    }

    /// Every set of modules that depend on each other in a circle (strongly connected
    /// components of more than one module), each sorted.
    pub fn cycles(&self) -> Vec<Vec<String>> {
        let names: Vec<&String> = self.files.keys().collect();
        let index: BTreeMap<&String, usize> =
            names.iter().enumerate().map(|(i, n)| (*n, i)).collect();
        let adjacency: Vec<Vec<usize>> = names
            .iter()
            .map(|n| {
                self.edges
                    .get(*n)
                    .map(|e| e.keys().filter_map(|t| index.get(t).copied()).collect())
                    .unwrap_or_default()
            })
            .collect();
        strongly_connected(&adjacency)
            .into_iter()
            .filter(|c| c.len() > 1)
            .map(|c| {
                let mut names: Vec<String> = c.iter().map(|i| names[*i].clone()).collect();
                names.sort();
                names
            })
            .collect()
    }

    /// The edges inside one cycle, as `a -> b (line)` lines, for a failure message.
    pub fn explain(&self, cycle: &[String]) -> String {
        let mut out = String::new();
        for from in cycle {
            for (to, line) in self.edges.get(from).into_iter().flatten() {
                if cycle.contains(to) {
                    out.push_str(&format!(
                        "  {} -> {}   ({})\n",
                        show(from),
                        show(to),
                        line.trim()
                    ));
                }
            }
        }
        out
    }
}

fn show(module: &str) -> &str {
    if module.is_empty() { "crate" } else { module }
}

fn join(parent: &str, child: &str) -> String {
    if parent.is_empty() {
        child.to_owned()
    } else {
        format!("{parent}::{child}")
    }
}

fn parent_of(module: &str) -> String {
    module
        .rsplit_once("::")
        .map_or(String::new(), |(parent, _)| parent.to_owned())
}

/// The source without `//` comments (doc links name paths that are not imports).
fn without_comments(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The source up to its `#[cfg(test)] mod tests` block (kept at the end of each file).
fn without_tests(code: &str) -> String {
    let mut out = Vec::new();
    let mut lines = code.lines().peekable();
    while let Some(line) = lines.next() {
        if line.trim() == "#[cfg(test)]"
            && lines
                .peek()
                .is_some_and(|next| next.trim_start().starts_with("mod tests"))
        {
            break;
        }
        out.push(line);
    }
    out.join("\n")
}

/// The `mod name;` declarations of a file (not inline `mod name { … }` blocks).
fn declared_modules(code: &str) -> Vec<String> {
    code.lines()
        .filter_map(|line| {
            let line = line.trim();
            let rest = line
                .strip_prefix("pub mod ")
                .or_else(|| line.strip_prefix("pub(crate) mod "))
                .or_else(|| line.strip_prefix("mod "))?;
            let name = rest.strip_suffix(';')?;
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
                .then(|| name.to_owned())
        })
        .collect()
}

fn child_file(file: &Path, child: &str) -> Option<PathBuf> {
    let dir = file.parent()?;
    let stem = file.file_stem()?.to_str()?;
    let base = if matches!(stem, "lib" | "main" | "mod") {
        dir.to_path_buf()
    } else {
        dir.join(stem)
    };
    [
        base.join(format!("{child}.rs")),
        base.join(child).join("mod.rs"),
    ]
    .into_iter()
    .find(|p| p.is_file())
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The modules `code` (of `module`) names, each with the line that names it.
fn references(code: &str, module: &str, modules: &BTreeSet<String>) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let chars: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let starts_word = chars[i].is_ascii_lowercase() || chars[i] == '_';
        let after_path = i >= 1 && (is_ident(chars[i - 1]) || chars[i - 1] == ':');
        let after_raw_quote = i >= 1 && (chars[i - 1] == '"' || chars[i - 1] == '\'');
        if !starts_word || after_path || after_raw_quote {
            i += 1;
            continue;
        }
        let mut end = i;
        while end < chars.len() && is_ident(chars[end]) {
            end += 1;
        }
        let word: String = chars[i..end].iter().collect();
        if !chars[end..].starts_with(&[':', ':']) {
            i = end;
            continue;
        }
        let base = match word.as_str() {
            "crate" => Some(String::new()),
            "self" => Some(module.to_owned()),
            "super" => Some(parent_of(module)),
            child if modules.contains(&join(module, child)) => Some(join(module, child)),
            _ => None,
        };
        let Some(base) = base else {
            i = end;
            continue;
        };
        let line_start = chars[..i]
            .iter()
            .rposition(|c| *c == '\n')
            .map_or(0, |p| p + 1);
        let line_end = chars[i..]
            .iter()
            .position(|c| *c == '\n')
            .map_or(chars.len(), |p| i + p);
        let line: String = chars[line_start..line_end].iter().collect();
        let (targets, consumed) = resolve(&chars[end + 2..], &base, modules);
        for target in targets {
            found.push((target, line.clone()));
        }
        i = end + 2 + consumed;
    }
    found
}

/// Follows a path (`a::b::Item`, `{a, b::c}`, `super::x`) from `base`: the modules it ends in,
/// and how many characters it took.
fn resolve(rest: &[char], base: &str, modules: &BTreeSet<String>) -> (Vec<String>, usize) {
    let mut at = 0;
    while at < rest.len() && rest[at].is_whitespace() {
        at += 1;
    }
    if at < rest.len() && rest[at] == '{' {
        let mut depth = 0;
        let mut close = at;
        for (k, c) in rest.iter().enumerate().skip(at) {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        close = k;
                        break;
                    }
                }
                _ => {}
            }
        }
        let inner = &rest[at + 1..close];
        let mut targets = Vec::new();
        let mut depth = 0;
        let mut start = 0;
        for k in 0..=inner.len() {
            let split = k == inner.len() || (inner[k] == ',' && depth == 0);
            if k < inner.len() {
                match inner[k] {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    _ => {}
                }
            }
            if split {
                let item: Vec<char> = inner[start..k]
                    .iter()
                    .copied()
                    .skip_while(|c| c.is_whitespace())
                    .collect();
                if !item.is_empty() {
                    let (found, _) = resolve(&item, base, modules);
                    targets.extend(found);
                }
                start = k + 1;
            }
        }
        return (targets, close + 1);
    }
    let mut end = at;
    while end < rest.len() && is_ident(rest[end]) {
        end += 1;
    }
    let word: String = rest[at..end].iter().collect();
    let next = match word.as_str() {
        "super" => Some(parent_of(base)),
        "self" => return (vec![base.to_owned()], end),
        _ if modules.contains(&join(base, &word)) => Some(join(base, &word)),
        _ => None,
    };
    match next {
        Some(next) if rest[end..].starts_with(&[':', ':']) => {
            let (targets, consumed) = resolve(&rest[end + 2..], &next, modules);
            (targets, end + 2 + consumed)
        }
        Some(next) => (vec![next], end),
        None => (vec![base.to_owned()], end),
    }
}

/// Tarjan's algorithm, iteratively: the strongly connected components of a graph.
fn strongly_connected(adjacency: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let n = adjacency.len();
    let mut index = vec![usize::MAX; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut components = Vec::new();
    let mut next = 0;
    for start in 0..n {
        if index[start] != usize::MAX {
            continue;
        }
        let mut work = vec![(start, 0usize)];
        while let Some(&(v, edge)) = work.last() {
            if edge == 0 && index[v] == usize::MAX {
                index[v] = next;
                low[v] = next;
                next += 1;
                stack.push(v);
                on_stack[v] = true;
            }
            if let Some(&w) = adjacency[v].get(edge) {
                if let Some(top) = work.last_mut() {
                    top.1 += 1;
                }
                if index[w] == usize::MAX {
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == index[v] {
                let mut component = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                components.push(component);
            }
        }
    }
    components
}

/// The crate roots of the workspace under `root`: every member's `src/lib.rs` and
/// `src/main.rs`, and the fuzz targets'.
pub fn crate_roots(root: &Path) -> Vec<PathBuf> {
    let mut roots = Vec::new();
    let members = [
        "shared",
        "accounts",
        "auth-api",
        "authorizer",
        "session-authorizer",
        "local-api",
        "admin",
        "tests",
        "bench",
    ];
    for member in members {
        for file in ["src/lib.rs", "src/main.rs"] {
            let path = root.join(member).join(file);
            if path.is_file() {
                roots.push(path);
            }
        }
    }
    roots
}

//! The docs stay true to the repository: every relative link and `#anchor` in README.md and
//! docs/ resolves, and the configuration reference names every environment variable the code
//! reads and every parameter of both templates.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// README.md, the other top-level pages, and every page of docs/.
fn pages() -> Vec<PathBuf> {
    let root = root();
    let mut pages: Vec<PathBuf> = ["README.md", "CHANGELOG.md", "SECURITY.md", "BENCHMARKS.md"]
        .iter()
        .map(|p| root.join(p))
        .collect();
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    pages.extend(docs);
    pages
}

/// The page's lines outside fenced code blocks.
fn prose(text: &str) -> Vec<&str> {
    let mut fenced = false;
    text.lines()
        .filter(|line| {
            if line.trim_start().starts_with("```") {
                fenced = !fenced;
                return false;
            }
            !fenced
        })
        .collect()
}

/// GitHub's anchor for a heading: lower case, punctuation dropped (hyphens and underscores
/// kept), spaces as hyphens; a repeated one gets `-1`, `-2`, ….
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = BTreeSet::new();
    for line in prose(text) {
        let Some(title) = line.strip_prefix('#') else {
            continue;
        };
        let title = title.trim_start_matches('#').trim();
        let slug: String = title
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '_' || *c == ' ')
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let n = seen.entry(slug.clone()).or_insert(0);
        out.insert(if *n == 0 {
            slug.clone()
        } else {
            format!("{slug}-{n}")
        });
        *n += 1;
    }
    out
}

/// The targets of the page's Markdown links `[text](target)`, outside code.
fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in prose(text) {
        // Inline code is not a link.
        let line: String = line.split('`').step_by(2).collect::<Vec<_>>().join("");
        let mut rest = line.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(end) = after.find(')') else {
                break;
            };
            out.push(after[..end].trim().to_owned());
            rest = &after[end..];
        }
    }
    out
}

#[test]
fn every_relative_link_and_anchor_in_the_docs_resolves() {
    let mut broken = Vec::new();
    let mut checked = 0;
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap();
        for target in links(&text) {
            if target.starts_with("http://")
                || target.starts_with("https://")
                || target.starts_with("mailto:")
            {
                continue;
            }
            checked += 1;
            let (path, anchor) = match target.split_once('#') {
                Some((path, anchor)) => (path, Some(anchor)),
                None => (target.as_str(), None),
            };
            let file = if path.is_empty() {
                page.clone()
            } else {
                page.parent().unwrap().join(path)
            };
            if !file.exists() {
                broken.push(format!("{}: {target} (no such file)", page.display()));
                continue;
            }
            if let Some(anchor) = anchor {
                let target_text = std::fs::read_to_string(&file).unwrap_or_default();
                if !anchors(&target_text).contains(anchor) {
                    broken.push(format!("{}: {target} (no such heading)", page.display()));
                }
            }
        }
    }
    assert!(checked > 40, "the links went missing: {checked}");
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn the_anchor_rules_are_github_s() {
    let text = "# Title\n## Administration: `auth-admin`\n## Zero-Lambda: the HTTP API variant\n\
                ```\n# not a heading\n```\n## Title\n";
    let found = anchors(text);
    for expected in [
        "title",
        "administration-auth-admin",
        "zero-lambda-the-http-api-variant",
        "title-1",
    ] {
        assert!(found.contains(expected), "{expected} in {found:?}");
    }
    assert!(!found.contains("not-a-heading"));
    assert_eq!(
        links("see [a](b.md#c) and `[x](y)` and [d](https://e)"),
        ["b.md#c", "https://e"]
    );
}

/// Source files of the crates that ship or run locally, without their test modules.
fn shipped_sources() -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut dirs: Vec<PathBuf> = [
        "shared",
        "accounts",
        "auth-api",
        "authorizer",
        "session-authorizer",
        "local-api",
        "admin",
    ]
    .iter()
    .map(|c| root().join(c).join("src"))
    .collect();
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                let code = match text.find("#[cfg(test)]\nmod tests") {
                    Some(at) => text[..at].to_owned(),
                    None => text,
                };
                out.push((path, code));
            }
        }
    }
    out
}

/// The environment variables `code` reads: the string literals given to the Env readers,
/// `std::env::var`, the SSM-parameter pairs and the errors that name a variable.
fn variables_read(code: &str) -> BTreeSet<String> {
    const READERS: [&str; 10] = [
        "optional(",
        "required(",
        "number(",
        "flag(",
        "env::var(",
        "env::var_os(",
        "from_parameter(",
        "ConfigError::new(",
        "key_set_from_env(",
        ".set(",
    ];
    let mut out = BTreeSet::new();
    for line in code.lines() {
        let line = line.trim();
        if line.starts_with("//") || !READERS.iter().any(|r| line.contains(r)) {
            continue;
        }
        for (i, piece) in line.split('"').enumerate() {
            let is_name = i % 2 == 1
                && piece.len() > 3
                && piece.contains('_')
                && piece
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
            if is_name {
                out.insert(piece.to_owned());
            }
        }
    }
    out
}

#[test]
fn the_configuration_reference_names_every_variable_the_code_reads() {
    let reference = std::fs::read_to_string(root().join("docs/configuration.md")).unwrap();
    let mut read = BTreeSet::new();
    for (_, code) in shipped_sources() {
        read.extend(variables_read(&code));
    }
    // Names the code uses that are not variables: API Gateway's response types.
    for not_a_variable in [
        "ACCESS_DENIED",
        "AUTHORIZER_CONFIGURATION_ERROR",
        "AUTHORIZER_FAILURE",
        "DEFAULT_4XX",
        "DEFAULT_5XX",
        "MISSING_AUTHENTICATION_TOKEN",
        "INTEGRATION_FAILURE",
        "REQUEST_TOO_LARGE",
    ] {
        read.remove(not_a_variable);
    }
    for sure in [
        "USERS_TABLE",
        "JWT_SIGNING_KEY",
        "MFA_ENCRYPTION_KEY",
        "NO_COLOR",
    ] {
        assert!(read.contains(sure), "the scan misses {sure}: {read:?}");
    }
    let missing: Vec<&String> = read
        .iter()
        .filter(|name| !reference.contains(&format!("`{name}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/configuration.md does not name {missing:?}"
    );
}

#[test]
fn the_configuration_reference_lists_every_template_parameter() {
    let reference = std::fs::read_to_string(root().join("docs/configuration.md")).unwrap();
    for template in ["template.yaml", "template-http-api.yaml"] {
        let text = std::fs::read_to_string(root().join(template)).unwrap();
        let names: Vec<&str> = text
            .split("\nParameters:\n")
            .nth(1)
            .unwrap()
            .lines()
            .take_while(|l| l.is_empty() || l.starts_with(' '))
            .filter_map(|l| l.strip_prefix("  ")?.strip_suffix(':'))
            .filter(|n| n.chars().all(|c| c.is_ascii_alphanumeric()))
            .collect();
        assert!(names.len() > 20, "{template}: {names:?}");
        for name in names {
            assert!(
                reference.contains(&format!("| `{name}` |")),
                "docs/configuration.md does not list {template}'s {name}"
            );
        }
    }
}

#[test]
fn every_test_the_security_model_names_exists() {
    let model = std::fs::read_to_string(root().join("docs/security.md")).unwrap();
    let mut named = 0;
    for span in model.split('`').skip(1).step_by(2) {
        let Some((module, test)) = span.split_once("::") else {
            continue;
        };
        if test.starts_with('*') || test.starts_with('…') || module.contains(' ') {
            continue;
        }
        let file = if module == "tests/logs.rs" {
            root().join("tests/tests/logs.rs")
        } else {
            root().join(format!("tests/tests/it/{module}.rs"))
        };
        let source = std::fs::read_to_string(&file)
            .unwrap_or_else(|_| panic!("docs/security.md names {span}: no {}", file.display()));
        assert!(
            source.contains(&format!("fn {test}(")) || source.contains(&format!("fn {test}<")),
            "docs/security.md names {span}, which does not exist"
        );
        named += 1;
    }
    assert!(named >= 25, "the security model names only {named} tests");
}

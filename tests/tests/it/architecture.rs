//! The rules of docs/architecture.md, kept by tools rather than by review.

use std::path::{Path, PathBuf};
use std::process::Command;

use integration_tests::architecture::{ModuleGraph, crate_roots};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn no_crate_has_an_import_cycle_between_its_modules() {
    let roots = crate_roots(&workspace());
    assert!(roots.len() >= 12, "crate roots went missing: {roots:?}");
    let mut report = String::new();
    for root in roots {
        let graph = ModuleGraph::of_crate(&root);
        for cycle in graph.cycles() {
            report.push_str(&format!(
                "{}: {}\n{}",
                root.display(),
                cycle.join(", "),
                graph.explain(&cycle)
            ));
        }
    }
    assert!(report.is_empty(), "import cycles:\n{report}");
}

#[test]
fn the_cycle_check_sees_a_cycle_through_super_crate_and_braces() {
    let dir = std::env::temp_dir().join(format!("cycles-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("a")).unwrap();
    std::fs::write(
        dir.join("lib.rs"),
        "pub mod a;\npub mod b;\npub use a::A;\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("a.rs"),
        "pub mod inner;\nuse crate::{b::{B}};\npub struct A;\n",
    )
    .unwrap();
    std::fs::write(dir.join("a/inner.rs"), "use super::super::b;\n").unwrap();
    std::fs::write(
        dir.join("b.rs"),
        "// crate::a::A is only named in a comment\npub struct B(crate::a::inner::X, super::a::A);\n\
         #[cfg(test)]\nmod tests {\n    use crate::a::A;\n}\n",
    )
    .unwrap();
    let graph = ModuleGraph::of_crate(&dir.join("lib.rs"));
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(graph.cycles(), vec![vec!["a", "a::inner", "b"]]);
    assert_eq!(
        graph.edges["b"].keys().collect::<Vec<_>>(),
        vec!["a", "a::inner"],
        "a comment and a test module are not dependencies"
    );
    assert_eq!(graph.edges[""].keys().collect::<Vec<_>>(), vec!["a"]);
}

/// `[dependencies]` of a member's Cargo.toml: the names, as written.
fn dependencies(member: &str) -> Vec<String> {
    let text = std::fs::read_to_string(workspace().join(member).join("Cargo.toml")).unwrap();
    let manifest: toml_lite::Manifest = toml_lite::parse(&text);
    manifest.dependencies
}

mod toml_lite {
    /// Just enough of a Cargo manifest: the names under `[dependencies]`.
    pub struct Manifest {
        pub dependencies: Vec<String>,
    }

    pub fn parse(text: &str) -> Manifest {
        let mut section = "";
        let mut dependencies = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with('[') {
                section = line;
                continue;
            }
            if section == "[dependencies]"
                && let Some((name, _)) = line.split_once('=')
                && !line.starts_with('#')
            {
                let name = name.trim();
                dependencies.push(name.strip_suffix(".workspace").unwrap_or(name).to_owned());
            }
        }
        Manifest { dependencies }
    }
}

#[test]
fn the_account_core_knows_no_http_and_its_callers_do_not_borrow_the_http_face() {
    let accounts = dependencies("accounts");
    for forbidden in [
        "lambda_http",
        "http",
        "auth-api",
        "lambda_runtime",
        "aws_lambda_events",
    ] {
        assert!(
            !accounts.iter().any(|d| d == forbidden),
            "accounts depends on {forbidden}: {accounts:?}"
        );
    }
    for member in ["admin", "session-authorizer", "shared", "authorizer"] {
        let deps = dependencies(member);
        assert!(
            !deps.iter().any(|d| d == "auth-api"),
            "{member} depends on auth-api: {deps:?}"
        );
    }
}

#[test]
fn cargo_tree_shows_no_lambda_http_under_the_core_the_cli_and_the_session_authorizer() {
    for package in ["accounts", "admin", "session-authorizer"] {
        let output = Command::new(env!("CARGO"))
            .args([
                "tree",
                "--offline",
                "-e",
                "normal",
                "--prefix",
                "none",
                "-p",
                package,
            ])
            .current_dir(workspace())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "cargo tree -p {package}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let tree = String::from_utf8(output.stdout).unwrap();
        assert!(tree.contains(package), "{tree}");
        for forbidden in ["lambda_http ", "auth-api "] {
            assert!(
                !tree.lines().any(|l| l.starts_with(forbidden)),
                "{package} links {forbidden}"
            );
        }
    }
}

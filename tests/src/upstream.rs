//! A real upstream OpenID provider for the federation tests: npm `oauth2-mock-server`, run by
//! tests/federation/upstream.mjs, whose claims a test sets per sign-in.

use std::path::PathBuf;
use std::process::Stdio;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub struct MockProvider {
    /// Its issuer URL (`http://127.0.0.1:<port>`).
    pub issuer: String,
    control: String,
    _child: Child,
}

impl MockProvider {
    /// Starts one. Panics with instructions when Node.js or the package is missing: these
    /// tests never skip.
    pub async fn start() -> Self {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let tools = std::env::var("NODE_TOOLS")
            .map(PathBuf::from)
            .unwrap_or_else(|_| root.join(".tools/node"));
        assert!(
            tools.join("node_modules/oauth2-mock-server").is_dir(),
            "{} has no oauth2-mock-server: run scripts/test, which installs it",
            tools.display()
        );
        let mut child = Command::new("node")
            .arg(root.join("tests/federation/upstream.mjs"))
            .env("NODE_TOOLS", &tools)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs (scripts/test installs Node.js tools)");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(std::time::Duration::from_secs(30), lines.next_line())
            .await
            .expect("the mock provider started within 30 s")
            .expect("its output")
            .expect("one line naming its URLs");
        let started: Value = serde_json::from_str(&line).expect("a JSON line");
        Self {
            issuer: started["issuer"]
                .as_str()
                .expect("issuer")
                .trim_end_matches('/')
                .to_owned(),
            control: started["control"].as_str().expect("control").to_owned(),
            _child: child,
        }
    }

    /// Every token it signs from now on carries `claims` (a null removes one).
    pub async fn answer_with(&self, claims: Value) {
        let sent = reqwest::Client::new()
            .post(&self.control)
            .json(&claims)
            .send()
            .await
            .expect("the mock provider's control answers");
        assert!(sent.status().is_success());
    }
}

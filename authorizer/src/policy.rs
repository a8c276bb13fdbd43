//! IAM policy documents as API Gateway evaluates them for `execute-api:Invoke`, and the
//! wildcard matching both the rules and the evaluation use.

use serde::Serialize;

/// The one action an authorizer policy grants or denies.
pub const INVOKE: &str = "execute-api:Invoke";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Effect {
    Allow,
    Deny,
}

/// One statement. Serialized exactly as API Gateway expects: no `Condition`, no nulls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Statement {
    pub action: &'static str,
    pub effect: Effect,
    pub resource: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PolicyDocument {
    pub version: &'static str,
    pub statement: Vec<Statement>,
}

impl PolicyDocument {
    pub fn new(statement: Vec<Statement>) -> Self {
        Self {
            version: "2012-10-17",
            statement,
        }
    }

    /// How API Gateway judges a call to `method_arn` under this policy: an explicit Deny wins,
    /// then any Allow, else the implicit deny.
    pub fn evaluate(&self, method_arn: &str) -> Option<Effect> {
        let matching = |effect: Effect| {
            self.statement.iter().any(|s| {
                s.effect == effect
                    && wildcard_match(s.action, INVOKE)
                    && s.resource.iter().any(|r| wildcard_match(r, method_arn))
            })
        };
        if matching(Effect::Deny) {
            Some(Effect::Deny)
        } else if matching(Effect::Allow) {
            Some(Effect::Allow)
        } else {
            None
        }
    }
}

/// IAM-style matching: `*` matches any run of characters (including `/`), `?` any one.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_like_iam() {
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("a/*/*", "a/GET/x/y/z"));
        assert!(wildcard_match("a/GET/admin/*", "a/GET/admin/users/7"));
        assert!(!wildcard_match("a/GET/admin/*", "a/GET/admin"));
        assert!(!wildcard_match("a/GET/admin/*", "a/POST/admin/x"));
        assert!(wildcard_match("a/?ET/x", "a/GET/x"));
        assert!(!wildcard_match("a/?ET/x", "a/ET/x"));
        assert!(wildcard_match("**a*", "bbba"));
        assert!(!wildcard_match("abc", "abcd"));
    }

    #[test]
    fn an_explicit_deny_wins() {
        let policy = PolicyDocument::new(vec![
            Statement {
                action: INVOKE,
                effect: Effect::Allow,
                resource: vec!["arn:x/prod/*/*".into()],
            },
            Statement {
                action: INVOKE,
                effect: Effect::Deny,
                resource: vec!["arn:x/prod/GET/admin/*".into()],
            },
        ]);
        assert_eq!(policy.evaluate("arn:x/prod/GET/items"), Some(Effect::Allow));
        assert_eq!(
            policy.evaluate("arn:x/prod/GET/admin/users"),
            Some(Effect::Deny)
        );
        assert_eq!(policy.evaluate("arn:x/test/GET/items"), None);
    }
}

//! Route rules (`AUTHORIZER_RULES`): which roles may call which routes.
//!
//! `{"GET /admin/*": ["admin"], "GET /orders/*": ["scope:orders:read"], "* /*": ["user"]}` —
//! keys are `METHOD PATH` patterns (`*` is a wildcard in both, matching across `/` like IAM),
//! values the roles and `scope:` entries admitted, and `@` conditions. A rule admits a token
//! that has any of its roles or scopes and meets every condition. A request is allowed when
//! **every** rule matching it admits the token, and at least one rule matches. That is exactly what an IAM policy of Allow statements (rules the token passes)
//! and Deny statements (rules it fails) expresses, so one cached policy is right for every route.

use std::collections::BTreeMap;

use shared::ConfigError;

const METHODS: [&str; 8] = [
    "*", "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// `METHOD/PATH` without the leading slash of the path doubled: the part of an
    /// execute-api ARN after the stage, e.g. `GET/admin/*`; `* /*` (any method, any path) is
    /// `*`, so that it also covers HTTP API's `$default` route ARN, which has no slash.
    pub resource: String,
    pub roles: Vec<String>,
}

/// What a rule looks at in a token.
#[derive(Debug, Clone, Copy)]
pub struct Holder<'a> {
    pub roles: &'a [String],
    /// The token's `scope`, space-separated.
    pub scope: &'a str,
    pub email_verified: bool,
    pub mfa: bool,
}

/// The prefix of a rule entry that names a scope rather than a role.
pub const SCOPE_PREFIX: &str = "scope:";

/// The role a rule can name to admit any token whose email is verified.
pub const EMAIL_VERIFIED: &str = "@email_verified";
/// The role a rule can name to admit any token whose sign-in passed a second factor (`amr`
/// holds `otp`).
pub const MFA: &str = "@mfa";

impl Rule {
    /// Whether a token passes this rule: one of the rule's roles or scopes (OR among
    /// themselves; a rule of conditions alone needs none) **and** every condition it names
    /// (`["admin", "@mfa"]`: admins who passed a second factor, not everyone who did).
    pub fn admits(&self, token: &Holder<'_>) -> bool {
        let mut named = self.roles.iter().filter(|r| !r.starts_with('@')).peekable();
        let named_ok = named.peek().is_none()
            || named.any(|wanted| match wanted.strip_prefix(SCOPE_PREFIX) {
                Some(scope) => token.scope.split(' ').any(|s| s == scope),
                None => token
                    .roles
                    .iter()
                    .any(|r| !r.starts_with('@') && r == wanted),
            });
        let conditions_ok = self.roles.iter().all(|r| match r.as_str() {
            EMAIL_VERIFIED => token.email_verified,
            MFA => token.mfa,
            _ => true,
        });
        named_ok && conditions_ok
    }
}

/// A validated, non-empty set of rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules(Vec<Rule>);

impl Rules {
    /// Parses the JSON of `AUTHORIZER_RULES`.
    pub fn parse(json: &str) -> Result<Self, ConfigError> {
        let bad = |problem: String| ConfigError::new("AUTHORIZER_RULES", problem);
        let map: BTreeMap<String, Vec<String>> = serde_json::from_str(json).map_err(|e| {
            bad(format!(
                "must be a JSON object of \"METHOD /path\" to a list of roles ({e})"
            ))
        })?;
        if map.is_empty() {
            return Err(bad(
                "has no rules; leave it unset to admit any valid token".into()
            ));
        }
        let mut rules = Vec::with_capacity(map.len());
        for (key, roles) in map {
            let (method, path) = key
                .split_once(' ')
                .ok_or_else(|| bad(format!("rule {key:?} must be \"METHOD /path\"")))?;
            let method = method.to_ascii_uppercase();
            if !METHODS.contains(&method.as_str()) {
                return Err(bad(format!(
                    "rule {key:?}: method must be one of {METHODS:?}"
                )));
            }
            let path_ok = path.starts_with('/')
                && path
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~!$&'()+,;=:@%/*{}".contains(&b));
            if !path_ok {
                return Err(bad(format!(
                    "rule {key:?}: path must start with / and hold only URL path characters and *"
                )));
            }
            if roles.is_empty() || roles.iter().any(|r| r.trim().is_empty()) {
                return Err(bad(format!(
                    "rule {key:?}: list at least one non-empty role"
                )));
            }
            if let Some(wrong) = roles.iter().find(|r| {
                r.strip_prefix(SCOPE_PREFIX).is_some_and(|scope| {
                    scope.is_empty()
                        || scope.len() > 128
                        || !scope
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b":._/-".contains(&b))
                })
            }) {
                return Err(bad(format!(
                    "rule {key:?}: {wrong:?} must name a scope of 1 to 128 letters, digits and                      : . _ / - after \"scope:\""
                )));
            }
            // `@` names a condition, not a role.
            if let Some(unknown) = roles
                .iter()
                .find(|r| r.starts_with('@') && ![EMAIL_VERIFIED, MFA].contains(&r.as_str()))
            {
                return Err(bad(format!(
                    "rule {key:?}: {unknown:?} is not a condition (only {EMAIL_VERIFIED} and \
                     {MFA} are)"
                )));
            }
            let any_path = path.len() > 1 && path[1..].bytes().all(|b| b == b'*');
            let resource = if method == "*" && any_path {
                "*".to_owned()
            } else {
                format!("{method}{path}")
            };
            rules.push(Rule { resource, roles });
        }
        Ok(Self(rules))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Rule> {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(roles: &[String], email_verified: bool, mfa: bool) -> Holder<'_> {
        Holder {
            roles,
            scope: "",
            email_verified,
            mfa,
        }
    }

    #[test]
    fn scope_entries_admit_tokens_holding_the_scope_and_and_with_conditions() {
        let rules = Rules::parse(r#"{"GET /orders/*": ["scope:orders:read", "admin"]}"#).unwrap();
        let rule = rules.iter().next().unwrap();
        let client = |scope| Holder {
            roles: &[],
            scope,
            email_verified: false,
            mfa: false,
        };
        assert!(rule.admits(&client("orders:read")));
        assert!(rule.admits(&client("a orders:read b")));
        assert!(!rule.admits(&client("orders:write")));
        assert!(!rule.admits(&client("orders:read:all")));
        assert!(!rule.admits(&client("")));
        // A role named like the scope is not the scope.
        assert!(!rule.admits(&h(&["orders:read".to_owned()], true, true)));
        assert!(rule.admits(&h(&["admin".to_owned()], false, false)));
        // A condition still binds a scope holder: a machine client has no second factor.
        let rules = Rules::parse(r#"{"* /x": ["scope:x", "@mfa"]}"#).unwrap();
        let rule = rules.iter().next().unwrap();
        assert!(!rule.admits(&client("x")));
    }

    #[test]
    fn rules_parse_into_arn_resources() {
        let rules = Rules::parse(r#"{"GET /admin/*": ["admin"], "* /*": ["user"]}"#).unwrap();
        let resources: Vec<&str> = rules.iter().map(|r| r.resource.as_str()).collect();
        assert_eq!(resources, vec!["*", "GET/admin/*"]);
    }

    #[test]
    fn email_verified_admits_only_tokens_whose_email_is_verified() {
        let rules = Rules::parse(r#"{"* /billing/*": ["@email_verified"]}"#).unwrap();
        let rule = rules.iter().next().unwrap();
        let roles = vec!["user".to_owned()];
        assert!(rule.admits(&h(&roles, true, false)));
        assert!(!rule.admits(&h(&roles, false, false)));
        // A role literally named like the condition is not needed, nor enough.
        assert!(!rule.admits(&h(&["@email_verified".to_owned()], false, false)));
    }

    #[test]
    fn conditions_and_with_the_roles_of_their_rule() {
        let rules = Rules::parse(r#"{"* /admin/*": ["admin", "@mfa"]}"#).unwrap();
        let rule = rules.iter().next().unwrap();
        let admin = vec!["admin".to_owned()];
        let user = vec!["user".to_owned()];
        assert!(rule.admits(&h(&admin, false, true)));
        // A second factor alone does not make a user an admin.
        assert!(!rule.admits(&h(&user, true, true)));
        // Nor is an admin without one admitted.
        assert!(!rule.admits(&h(&admin, true, false)));

        // Roles stay OR among themselves; every condition must hold.
        let rules =
            Rules::parse(r#"{"* /x": ["admin", "ops", "@mfa", "@email_verified"]}"#).unwrap();
        let rule = rules.iter().next().unwrap();
        assert!(rule.admits(&h(&["ops".to_owned()], true, true)));
        assert!(!rule.admits(&h(&["ops".to_owned()], false, true)));
        assert!(!rule.admits(&h(&["ops".to_owned()], true, false)));
        assert!(!rule.admits(&h(&user, true, true)));
    }

    #[test]
    fn invalid_rules_name_the_problem() {
        for (json, words) in [
            ("nope", "JSON object"),
            ("{}", "no rules"),
            (r#"{"GET": ["a"]}"#, "METHOD /path"),
            (r#"{"FETCH /x": ["a"]}"#, "method must be"),
            (r#"{"GET x": ["a"]}"#, "must start with /"),
            (r#"{"GET /a b": ["a"]}"#, "must start with /"),
            (r#"{"GET /x?": ["a"]}"#, "must start with /"),
            (r#"{"GET /x": []}"#, "at least one"),
            (r#"{"GET /x": [""]}"#, "at least one"),
            (r#"{"GET /x": "admin"}"#, "JSON object"),
            (r#"{"GET /x": ["@verified"]}"#, "not a condition"),
            (r#"{"GET /x": ["scope:"]}"#, "must name a scope"),
            (r#"{"GET /x": ["scope:a b"]}"#, "must name a scope"),
        ] {
            let err = Rules::parse(json).unwrap_err();
            assert_eq!(err.variable, "AUTHORIZER_RULES");
            assert!(err.problem.contains(words), "{json}: {}", err.problem);
        }
    }

    #[test]
    fn mfa_admits_only_tokens_whose_sign_in_passed_a_second_factor() {
        let rules = Rules::parse(r#"{"* /admin/*": ["@mfa"]}"#).unwrap();
        let rule = rules.iter().next().unwrap();
        let roles = vec!["user".to_owned(), "admin".to_owned()];
        assert!(rule.admits(&h(&roles, false, true)));
        assert!(!rule.admits(&h(&roles, true, false)));
        assert!(!rule.admits(&h(&["@mfa".to_owned()], false, false)));
    }
}

//! Route rules (`AUTHORIZER_RULES`): which roles may call which routes.
//!
//! `{"GET /admin/*": ["admin"], "* /*": ["user"]}` — keys are `METHOD PATH` patterns (`*` is a
//! wildcard in both, matching across `/` like IAM), values the roles admitted. A request is
//! allowed when **every** rule matching it admits one of the token's roles, and at least one
//! rule matches. That is exactly what an IAM policy of Allow statements (rules the token passes)
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

/// The role a rule can name to admit any token whose email is verified.
pub const EMAIL_VERIFIED: &str = "@email_verified";
/// The role a rule can name to admit any token whose sign-in passed a second factor (`amr`
/// holds `otp`).
pub const MFA: &str = "@mfa";

impl Rule {
    /// Whether a token with `roles`, a verified email or not and a second factor or not
    /// passes this rule: one of the rule's roles (roles OR among themselves; a rule of
    /// conditions alone needs none) **and** every condition it names (`["admin", "@mfa"]`:
    /// admins who passed a second factor, not everyone who did).
    pub fn admits(&self, roles: &[String], email_verified: bool, mfa: bool) -> bool {
        let mut named_roles = self.roles.iter().filter(|r| !r.starts_with('@')).peekable();
        let role_ok = named_roles.peek().is_none()
            || named_roles.any(|wanted| roles.iter().any(|r| !r.starts_with('@') && r == wanted));
        let conditions_ok = self.roles.iter().all(|r| match r.as_str() {
            EMAIL_VERIFIED => email_verified,
            MFA => mfa,
            _ => true,
        });
        role_ok && conditions_ok
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
        assert!(rule.admits(&roles, true, false));
        assert!(!rule.admits(&roles, false, false));
        // A role literally named like the condition is not needed, nor enough.
        assert!(!rule.admits(&["@email_verified".to_owned()], false, false));
    }

    #[test]
    fn conditions_and_with_the_roles_of_their_rule() {
        let rules = Rules::parse(r#"{"* /admin/*": ["admin", "@mfa"]}"#).unwrap();
        let rule = rules.iter().next().unwrap();
        let admin = vec!["admin".to_owned()];
        let user = vec!["user".to_owned()];
        assert!(rule.admits(&admin, false, true));
        // A second factor alone does not make a user an admin.
        assert!(!rule.admits(&user, true, true));
        // Nor is an admin without one admitted.
        assert!(!rule.admits(&admin, true, false));

        // Roles stay OR among themselves; every condition must hold.
        let rules =
            Rules::parse(r#"{"* /x": ["admin", "ops", "@mfa", "@email_verified"]}"#).unwrap();
        let rule = rules.iter().next().unwrap();
        assert!(rule.admits(&["ops".to_owned()], true, true));
        assert!(!rule.admits(&["ops".to_owned()], false, true));
        assert!(!rule.admits(&["ops".to_owned()], true, false));
        assert!(!rule.admits(&user, true, true));
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
        assert!(rule.admits(&roles, false, true));
        assert!(!rule.admits(&roles, true, false));
        assert!(!rule.admits(&["@mfa".to_owned()], false, false));
    }
}

//! Parsed inputs: once an `Email` or `NewPassword` exists, it is valid.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};

/// Longest email address accepted (RFC 5321 path limit).
pub const MAX_EMAIL_LEN: usize = 254;
/// Shortest password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// bcrypt reads at most 72 bytes; longer passwords are refused, never truncated.
pub const MAX_PASSWORD_BYTES: usize = 72;
/// Lowest zxcvbn score (0 to 4) accepted for a new password.
pub const MIN_PASSWORD_SCORE: u8 = 3;

/// A syntactically valid email address, trimmed and lower-cased.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// Trims, lower-cases and checks `raw`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let email = raw.trim().to_lowercase();
        if email.is_empty() {
            return Err("is required".into());
        }
        if email.len() > MAX_EMAIL_LEN {
            return Err(format!("must be at most {MAX_EMAIL_LEN} characters"));
        }
        if !email.is_ascii() {
            return Err("must contain only ASCII characters (use the punycode form of an internationalised domain)".into());
        }
        let Some((local, domain)) = email.rsplit_once('@') else {
            return Err("must look like name@example.com".into());
        };
        if !valid_local_part(local) || !valid_domain(domain) {
            return Err("must look like name@example.com".into());
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The mailbox mail to this address lands in, for counting mail: the address without a
    /// `+tag` in its local part (`ada+1@example.com` → `ada@example.com`). Most providers
    /// deliver every tag to one inbox, so the mail limits count them together; the account
    /// itself keeps the address as typed.
    pub fn mailbox(&self) -> Email {
        match self.0.rsplit_once('@') {
            Some((local, domain)) => match local.split_once('+') {
                Some((base, _)) if !base.is_empty() => Email(format!("{base}@{domain}")),
                _ => self.clone(),
            },
            None => self.clone(),
        }
    }

    /// The address, its local part and the words in it: what a password should not be
    /// built from.
    pub fn words(&self) -> Vec<&str> {
        let mut words = vec![self.as_str(), self.local_part()];
        words.extend(
            self.0
                .split(|c: char| !c.is_ascii_alphanumeric())
                .filter(|w| w.len() >= 3),
        );
        words
    }

    /// The part before the `@`.
    pub fn local_part(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(l, _)| l)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Email").field(&self.0).finish()
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn valid_local_part(local: &str) -> bool {
    const SPECIALS: &str = "!#$%&'*+/=?^_`{|}~-.";
    !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || SPECIALS.contains(c))
}

fn valid_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        && labels
            .last()
            .is_some_and(|tld| tld.len() >= 2 && !tld.chars().all(|c| c.is_ascii_digit()))
}

/// A password that meets the rules for new passwords. Exactly as typed: never trimmed.
pub struct NewPassword(SecretString);

impl NewPassword {
    /// Checks length, bcrypt's byte limit and zxcvbn strength (with the email as context).
    /// Returns every problem found.
    pub fn parse(raw: String, email: Option<&Email>) -> Result<Self, Vec<String>> {
        let secret = SecretString::from(raw);
        let password = secret.expose_secret();
        let mut problems = Vec::new();
        if password.chars().count() < MIN_PASSWORD_CHARS {
            problems.push(format!("must be at least {MIN_PASSWORD_CHARS} characters"));
        }
        if password.len() > MAX_PASSWORD_BYTES {
            problems.push(format!(
                "must be at most {MAX_PASSWORD_BYTES} bytes in UTF-8 (bcrypt's limit; it is {} bytes). Passwords are never truncated",
                password.len()
            ));
        }
        // bcrypt appends a NUL to the key, so "p" and "p\0" could collide at the 72-byte edge.
        if password.contains('\0') {
            problems.push("must not contain NUL characters".into());
        }
        if problems.is_empty() {
            let inputs = email.map(Email::words).unwrap_or_default();
            let entropy = zxcvbn::zxcvbn(password, &inputs);
            let score = u8::from(entropy.score());
            if score < MIN_PASSWORD_SCORE {
                let mut message = format!(
                    "is too easy to guess (strength {score} of 4, at least {MIN_PASSWORD_SCORE} needed)"
                );
                if let Some(feedback) = entropy.feedback() {
                    // zxcvbn's sentences end with their own full stop, or not.
                    let sentences = feedback
                        .warning()
                        .map(|w| w.to_string())
                        .into_iter()
                        .chain(feedback.suggestions().iter().map(|s| s.to_string()));
                    for sentence in sentences {
                        let sentence = sentence.trim().trim_end_matches('.');
                        if !sentence.is_empty() {
                            message.push_str(". ");
                            message.push_str(sentence);
                        }
                    }
                }
                message.push('.');
                problems.push(message);
            }
        }
        if problems.is_empty() {
            Ok(Self(secret))
        } else {
            Err(problems)
        }
    }

    pub fn secret(&self) -> &SecretString {
        &self.0
    }
}

impl fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NewPassword(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tagged_address_counts_toward_its_mailbox() {
        let mailbox = |raw: &str| Email::parse(raw).unwrap().mailbox().as_str().to_owned();
        assert_eq!(mailbox("Ada+1@Example.com"), "ada@example.com");
        assert_eq!(mailbox("ada+a+b@example.com"), "ada@example.com");
        assert_eq!(mailbox("ada@example.com"), "ada@example.com");
        // Nothing before the tag: the address is its own mailbox.
        assert_eq!(mailbox("+x@example.com"), "+x@example.com");
    }

    #[test]
    fn emails_are_trimmed_and_lower_cased() {
        let e = Email::parse("  Ada.Lovelace@Example.COM \n").unwrap();
        assert_eq!(e.as_str(), "ada.lovelace@example.com");
        assert_eq!(e.local_part(), "ada.lovelace");
    }

    #[test]
    fn malformed_emails_are_refused() {
        for bad in [
            "",
            "   ",
            "plain",
            "@example.com",
            "a@",
            "a@b",
            "a@@b.com",
            "a b@c.com",
            "a..b@c.com",
            ".a@b.com",
            "a@-b.com",
            "a@b-.com",
            "a@b..com",
            "a@b.c",
            "a@1.23",
            "ä@b.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be refused");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(Email::parse(&long).unwrap_err().contains("254"));
    }

    #[test]
    fn ordinary_emails_are_accepted() {
        for good in [
            "a@b.co",
            "first.last+tag@sub.example.org",
            "o'neil@xn--bcher-kva.example",
        ] {
            assert!(Email::parse(good).is_ok(), "{good:?} should be accepted");
        }
    }

    #[test]
    fn passwords_are_never_trimmed() {
        let p = NewPassword::parse("  correct horse battery staple  ".into(), None).unwrap();
        assert_eq!(
            p.secret().expose_secret(),
            "  correct horse battery staple  "
        );
    }

    #[test]
    fn password_limits_are_counted_in_characters_and_bytes() {
        assert!(NewPassword::parse("Xk9#qz".into(), None).unwrap_err()[0].contains("at least 8"));
        // 36 two-byte characters: 36 characters but 72 bytes, accepted; one more is refused.
        let at_limit = "é".repeat(30) + "ÿñ§Ω¥Ø";
        assert_eq!(at_limit.len(), 72);
        assert!(NewPassword::parse(at_limit.clone(), None).is_ok());
        let over = at_limit + "x";
        let problems = NewPassword::parse(over, None).unwrap_err();
        assert!(problems[0].contains("at most 72 bytes"), "{problems:?}");
    }

    #[test]
    fn weak_passwords_get_zxcvbn_feedback_and_the_email_counts_against_them() {
        let problems = NewPassword::parse("password123".into(), None).unwrap_err();
        assert!(problems[0].contains("too easy to guess"), "{problems:?}");
        // zxcvbn's own sentences, joined once: no "password.. Add".
        let advice = &NewPassword::parse("password1".into(), None).unwrap_err()[0];
        assert!(advice.contains("common password. Add"), "{advice}");
        assert!(!advice.contains(".."), "{advice}");
        assert!(advice.ends_with('.'), "{advice}");
        let email = Email::parse("zanzibar.quixote@example.com").unwrap();
        // Strong enough on its own, weak once it is known to be the account's own name.
        assert!(NewPassword::parse("zanzibar.quixote".into(), None).is_ok());
        assert!(NewPassword::parse("zanzibar.quixote".into(), Some(&email)).is_err());
    }

    #[test]
    fn nul_characters_are_refused() {
        let problems = NewPassword::parse("tr0ub4dor&3 horse\0".into(), None).unwrap_err();
        assert!(problems.iter().any(|p| p.contains("NUL")));
    }

    #[test]
    fn debug_never_shows_a_password() {
        let p = NewPassword::parse("correct horse battery staple".into(), None).unwrap();
        assert!(!format!("{p:?}").contains("horse"));
    }
}

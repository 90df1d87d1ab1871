//! What a user may do in a vhost: RabbitMQ's configure / write / read
//! regular expressions, and topic permissions on routing keys.

use regex::Regex;

/// The three kinds of access RabbitMQ distinguishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Perm {
    Configure,
    Write,
    Read,
}

/// The kind of resource a permission is checked on, as RabbitMQ names it
/// in its refusals ("access to queue 'q' in vhost '/' ...").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Exchange,
    Queue,
}

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Exchange => "exchange",
            Kind::Queue => "queue",
        }
    }
}

/// A permission regexp: matched anywhere in the name (PCRE's `re:run`
/// without anchors), and the empty string meaning "nothing" (`^$`).
#[derive(Clone, Debug)]
pub(crate) struct Pattern {
    pub source: String,
    re: Regex,
}

impl Pattern {
    pub(crate) fn new(source: &str) -> Result<Pattern, String> {
        let effective = if source.is_empty() { "^$" } else { source };
        let re = Regex::new(effective)
            .map_err(|e| format!("invalid regular expression '{source}': {e}"))?;
        Ok(Pattern {
            source: source.to_string(),
            re,
        })
    }

    /// A topic permission: `{username}`, `{vhost}` and `{client_id}` stand
    /// for the connection's, so it is checked as a regexp with them
    /// expanded (PCRE reads `{name}` literally; Rust's regex would not).
    pub(crate) fn template(source: &str) -> Result<Pattern, String> {
        let p = Pattern {
            source: source.to_string(),
            re: Regex::new("^$").expect("constant regex"),
        };
        let probe = p.expanded_source(&[("username", "u"), ("vhost", "v"), ("client_id", "c")]);
        Regex::new(&probe).map_err(|e| format!("invalid regular expression '{source}': {e}"))?;
        Ok(p)
    }

    fn expanded_source(&self, vars: &[(&str, &str)]) -> String {
        let mut s = if self.source.is_empty() {
            "^$".to_string()
        } else {
            self.source.clone()
        };
        for (k, v) in vars {
            s = s.replace(&format!("{{{k}}}"), &regex::escape(v));
        }
        s
    }

    pub(crate) fn matches(&self, name: &str) -> bool {
        self.re.is_match(name)
    }

    /// A topic permission with `{username}`, `{vhost}` and `{client_id}`
    /// replaced by the connection's (escaped, as RabbitMQ does).
    pub(crate) fn expanded(&self, vars: &[(&str, &str)]) -> Pattern {
        let s = self.expanded_source(vars);
        // An expansion that no longer compiles denies, as RabbitMQ's
        // `re:run` error does.
        Pattern::new(&s).unwrap_or_else(|_| Pattern::deny_all())
    }

    fn deny_all() -> Pattern {
        Pattern {
            source: String::new(),
            re: Regex::new("[^\\s\\S]").expect("constant regex"),
        }
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

/// A user's permissions in one vhost.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Permissions {
    pub configure: Pattern,
    pub write: Pattern,
    pub read: Pattern,
}

impl Permissions {
    pub(crate) fn new(configure: &str, write: &str, read: &str) -> Result<Permissions, String> {
        Ok(Permissions {
            configure: Pattern::new(configure)?,
            write: Pattern::new(write)?,
            read: Pattern::new(read)?,
        })
    }

    pub(crate) fn full() -> Permissions {
        Self::new(".*", ".*", ".*").expect("constant regexes")
    }

    pub(crate) fn allows(&self, perm: Perm, name: &str) -> bool {
        match perm {
            Perm::Configure => self.configure.matches(name),
            Perm::Write => self.write.matches(name),
            Perm::Read => self.read.matches(name),
        }
    }
}

/// A user's topic permissions on one topic exchange of one vhost.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct TopicPermission {
    pub exchange: String,
    pub write: Pattern,
    pub read: Pattern,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_anywhere_and_empty_means_nothing() {
        let p = Permissions::new("^a", "b", "").unwrap();
        assert!(p.allows(Perm::Configure, "abc"));
        assert!(!p.allows(Perm::Configure, "cab"));
        assert!(p.allows(Perm::Write, "cab"));
        assert!(!p.allows(Perm::Read, "x"));
        assert!(p.allows(Perm::Read, ""));
        assert!(Pattern::new("(").is_err());
    }

    #[test]
    fn topic_patterns_expand_escaped_variables() {
        let p = Pattern::template("^{username}\\.{vhost}$").unwrap();
        let e = p.expanded(&[("username", "a.b"), ("vhost", "/")]);
        assert!(e.matches("a.b./"));
        assert!(!e.matches("aXb./"), "the user name's dot is literal");
    }
}

//! Script keywords (`notify_up`, `misc_path`, `quorum_up`, `notify_master`, `script`…).
//!
//! keepalived re-reads the whole keyword line with both quote characters (`"` and `'`),
//! takes the second word as the command and the third and fourth as user and group
//! (`notify_script_init`), then splits the command once more into the program and its
//! arguments, honouring both quotes and shell-like escapes (`\n`, `\t`, `\xXX`, `\nnn`,
//! `\cC`…; `alloc_strvec_quoted_escaped`). A script gets no extra arguments for real
//! server and quorum notifications; VRRP `notify` scripts get four (instance or group,
//! name, state, priority), added when run.

use crate::diag::Diags;
use crate::tree::Node;
use std::fmt;

/// A command and the account it runs as.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Script {
    /// Program and arguments, quotes and escapes already resolved.
    pub args: Vec<String>,
    /// `user [group]` from the keyword line (or `user` of MISC_CHECK); `None` means the
    /// default script user (`script_user`, else `keepalived_script` if it exists, else
    /// the daemon's own account).
    pub user: Option<String>,
    pub group: Option<String>,
}

impl Script {
    /// The command line as keepalived builds it for `system()`: every argument in single
    /// quotes (embedded `'` written `'\''`), except a first word that is only a shell
    /// redirection (`<file`, `>file`).
    pub fn command_line(&self) -> String {
        let mut out = String::new();
        for (i, a) in self.args.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            if i == 0 && (a.starts_with('<') || a.starts_with('>')) {
                out.push_str(a);
                continue;
            }
            out.push('\'');
            out.push_str(&a.replace('\'', "'\\''"));
            out.push('\'');
        }
        out
    }
}

impl fmt::Display for Script {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.args.join(" "))?;
        if let Some(u) = &self.user {
            write!(f, " (as {u}")?;
            if let Some(g) = &self.group {
                write!(f, ":{g}")?;
            }
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// Parses a script keyword line; `with_user`: words 3 and 4 are user and group.
pub fn parse(d: &mut Diags, n: &Node, with_user: bool) -> Option<Script> {
    let words = match split_quoted(&n.raw, false) {
        Ok(w) => w,
        Err(e) => {
            d.error(n.pos(), format!("'{}': {e}", n.name()));
            return None;
        }
    };
    let Some(cmd) = words.get(1) else {
        d.error(n.pos(), format!("'{}' needs a command", n.name()));
        return None;
    };
    let args = match split_quoted(cmd, true) {
        Ok(a) if !a.is_empty() => a,
        Ok(_) => {
            d.error(n.pos(), format!("'{}': empty command", n.name()));
            return None;
        }
        Err(e) => {
            d.error(n.pos(), format!("'{}': {e}", n.name()));
            return None;
        }
    };
    let (user, group) = if with_user {
        (words.get(2).cloned(), words.get(3).cloned())
    } else {
        (None, None)
    };
    if !with_user && words.len() > 2 {
        if let Some(t) = n.args.get(1) {
            d.warn(
                &t.pos,
                format!(
                    "'{}': words after the command are ignored (quote the command)",
                    n.name()
                ),
            );
        }
    }
    Some(Script { args, user, group })
}

/// Splits on white space; `"…"` and `'…'` group words (quotes removed); a backslash
/// escapes the next character (processed as a C/shell escape when `escapes`, otherwise
/// kept with its backslash for the second pass).
pub fn split_quoted(src: &str, escapes: bool) -> Result<Vec<String>, String> {
    let chars: Vec<char> = src.chars().collect();
    let mut words = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        while i < chars.len() && chars[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= chars.len() {
            break;
        }
        let mut word = String::new();
        let mut quote: Option<char> = None;
        while i < chars.len() {
            let c = chars[i];
            match (quote, c) {
                (_, '\\') => {
                    i += 1;
                    let Some(&e) = chars.get(i) else {
                        return Err(format!("missing escaped character at the end of '{src}'"));
                    };
                    if escapes {
                        i = unescape(&chars, i, &mut word);
                        continue;
                    }
                    word.push('\\');
                    word.push(e);
                }
                (Some(q), c) if c == q => quote = None,
                (None, '"' | '\'') => quote = Some(c),
                (None, c) if c.is_ascii_whitespace() => break,
                (_, c) => word.push(c),
            }
            i += 1;
        }
        if let Some(q) = quote {
            return Err(format!("missing terminating {q} in '{src}'"));
        }
        words.push(word);
    }
    Ok(words)
}

/// Decodes the escape whose character is at `chars[i]`; returns the index after it.
fn unescape(chars: &[char], mut i: usize, out: &mut String) -> usize {
    let c = chars[i];
    let hex = |c: char| c.to_digit(16);
    if c == 'x' && chars.get(i + 1).and_then(|c| hex(*c)).is_some() {
        let mut v = 0u32;
        i += 1;
        for _ in 0..2 {
            match chars.get(i).and_then(|c| hex(*c)) {
                Some(h) => {
                    v = v * 16 + h;
                    i += 1;
                }
                None => break,
            }
        }
        out.push(char::from_u32(v).unwrap_or('?'));
        return i;
    }
    if c == 'c' && i + 1 < chars.len() {
        out.push(char::from_u32(chars[i + 1] as u32 & 0x1f).unwrap_or('?'));
        return i + 2;
    }
    if ('0'..='7').contains(&c) {
        let mut v = 0u32;
        for _ in 0..3 {
            match chars.get(i) {
                Some(d @ '0'..='7') => {
                    v = v * 8 + (*d as u32 - '0' as u32);
                    i += 1;
                }
                _ => break,
            }
        }
        out.push(char::from_u32(v & 0xff).unwrap_or('?'));
        return i;
    }
    out.push(match c {
        'a' => '\x07',
        'b' => '\x08',
        'E' => '\x1b',
        'f' => '\x0c',
        'n' => '\n',
        'r' => '\r',
        't' => '\t',
        'v' => '\x0b',
        other => other,
    });
    i + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keepalived_man_page_example() {
        // notify_master "/etc/keepalived/notify_event.sh ' spaces\\x20f\x69le ' '\"s p a c e \"' SG1.low master" user group
        let line = r#"notify_master "/etc/keepalived/notify_event.sh ' spaces\\x20f\x69le ' '\"s p a c e \"' SG1.low master" user group"#;
        let words = split_quoted(line, false).unwrap();
        assert_eq!(words[2], "user");
        assert_eq!(words[3], "group");
        let args = split_quoted(&words[1], true).unwrap();
        assert_eq!(
            args,
            [
                "/etc/keepalived/notify_event.sh",
                " spaces\\x20file ",
                "\"s p a c e \"",
                "SG1.low",
                "master"
            ]
        );
    }

    #[test]
    fn command_line_quotes_every_argument() {
        let s = Script {
            args: vec!["/bin/echo".into(), "it's".into(), "a b".into()],
            user: None,
            group: None,
        };
        assert_eq!(s.command_line(), r"'/bin/echo' 'it'\''s' 'a b'");
    }

    #[test]
    fn unterminated_quote_is_an_error() {
        assert!(split_quoted("a 'b", true).is_err());
        assert!(split_quoted("a b\\", true).is_err());
    }
}

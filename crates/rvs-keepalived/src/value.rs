//! Reading keyword values: numbers, `<TIMER>`s, `<BOOL>`s, addresses. Each reader
//! reports a value error at the offending word (`file:line:col`) and returns `None`.

use crate::diag::Diags;
use crate::lexer::Token;
use crate::tree::Node;
use std::net::IpAddr;
use std::time::Duration;

/// The `i`-th word after the keyword (1-based, as keepalived's `strvec_slot`).
pub fn arg<'n>(d: &mut Diags, n: &'n Node, i: usize) -> Option<&'n Token> {
    let t = n.args.get(i - 1);
    if t.is_none() {
        d.error(n.pos(), format!("'{}' needs a value", n.name()));
    }
    t
}

pub fn opt_arg(n: &Node, i: usize) -> Option<&Token> {
    n.args.get(i - 1)
}

/// An unsigned integer in `min..=max`.
pub fn uint(d: &mut Diags, n: &Node, i: usize, min: u64, max: u64) -> Option<u64> {
    let t = arg(d, n, i)?;
    uint_tok(d, n.name(), t, min, max)
}

pub fn uint_tok(d: &mut Diags, kw: &str, t: &Token, min: u64, max: u64) -> Option<u64> {
    match t.text.parse::<u64>() {
        Ok(v) if (min..=max).contains(&v) => Some(v),
        _ => {
            d.error(
                &t.pos,
                format!(
                    "invalid {kw} '{}' (expected an integer {min}..{max})",
                    t.text
                ),
            );
            None
        }
    }
}

/// A signed integer in `min..=max`.
pub fn int_tok(d: &mut Diags, kw: &str, t: &Token, min: i64, max: i64) -> Option<i64> {
    match t.text.parse::<i64>() {
        Ok(v) if (min..=max).contains(&v) => Some(v),
        _ => {
            d.error(
                &t.pos,
                format!(
                    "invalid {kw} '{}' (expected an integer {min}..{max})",
                    t.text
                ),
            );
            None
        }
    }
}

/// A `<TIMER>`: seconds with up to six decimals (keepalived's resolution is 1 µs).
pub fn timer(
    d: &mut Diags,
    n: &Node,
    i: usize,
    min: Duration,
    max: Option<Duration>,
) -> Option<Duration> {
    let t = arg(d, n, i)?;
    timer_tok(d, n.name(), t, min, max)
}

pub fn timer_tok(
    d: &mut Diags,
    kw: &str,
    t: &Token,
    min: Duration,
    max: Option<Duration>,
) -> Option<Duration> {
    let v = parse_timer(&t.text).filter(|v| *v >= min && max.is_none_or(|m| *v <= m));
    if v.is_none() {
        let range = match max {
            Some(m) => format!("{}..{} s", secs(min), secs(m)),
            None => format!("at least {} s", secs(min)),
        };
        d.error(
            &t.pos,
            format!("invalid {kw} '{}' (expected seconds, {range})", t.text),
        );
    }
    v
}

fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{}", s as u64)
    } else {
        format!("{s}")
    }
}

/// `12`, `0.25`, `3.000001`; no sign, no exponent, at most 6 decimals.
pub fn parse_timer(s: &str) -> Option<Duration> {
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, f),
        None => (s, ""),
    };
    if (int.is_empty() && frac.is_empty())
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || frac.len() > 6
    {
        return None;
    }
    let whole: u64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut micros: u32 = 0;
    for (k, b) in frac.bytes().enumerate() {
        micros += u32::from(b - b'0') * 10u32.pow(5 - k as u32);
    }
    Some(Duration::from_secs(whole) + Duration::from_micros(u64::from(micros)))
}

/// `<BOOL>` (on|off|true|false|yes|no); a keyword given alone means true.
pub fn bool_opt(d: &mut Diags, n: &Node) -> Option<bool> {
    match opt_arg(n, 1) {
        None => Some(true),
        Some(t) => match t.text.as_str() {
            "on" | "true" | "yes" => Some(true),
            "off" | "false" | "no" => Some(false),
            other => {
                d.error(
                    &t.pos,
                    format!(
                        "invalid {} value '{other}' (expected on|off|true|false|yes|no)",
                        n.name()
                    ),
                );
                None
            }
        },
    }
}

pub fn ip_tok(d: &mut Diags, kw: &str, t: &Token) -> Option<IpAddr> {
    match t.text.parse::<IpAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            d.error(&t.pos, format!("invalid {kw} address '{}'", t.text));
            None
        }
    }
}

pub fn ip(d: &mut Diags, n: &Node, i: usize) -> Option<IpAddr> {
    let t = arg(d, n, i)?;
    ip_tok(d, n.name(), t)
}

/// A port; `0` (or none) means "not given", as keepalived's `inet_stosockaddr` callers do.
pub fn port_tok(d: &mut Diags, kw: &str, t: &Token) -> Option<u16> {
    uint_tok(d, &format!("{kw} port"), t, 0, 65535).map(|p| p as u16)
}

/// The first argument as a string.
pub fn string(d: &mut Diags, n: &Node) -> Option<String> {
    arg(d, n, 1).map(|t| t.text.clone())
}

/// Reports arguments beyond `max` (keepalived ignores them silently; we warn).
pub fn extra_args(d: &mut Diags, n: &Node, max: usize) {
    if let Some(t) = n.args.get(max) {
        d.warn(
            &t.pos,
            format!("'{}': extra parameter '{}' ignored", n.name(), t.text),
        );
    }
}

pub fn need_block(d: &mut Diags, n: &Node) -> bool {
    if n.block.is_none() {
        d.error(n.pos(), format!("'{}' needs a block {{ ... }}", n.name()));
        return false;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_have_microsecond_resolution() {
        assert_eq!(parse_timer("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_timer("0.25"), Some(Duration::from_millis(250)));
        assert_eq!(parse_timer(".5"), Some(Duration::from_millis(500)));
        assert_eq!(
            parse_timer("1.000001"),
            Some(Duration::from_micros(1_000_001))
        );
        assert_eq!(parse_timer("1.0000001"), None);
        assert_eq!(parse_timer("-1"), None);
        assert_eq!(parse_timer("1e3"), None);
        assert_eq!(parse_timer(""), None);
    }
}

//! Number syntax of ipvsadm's arguments, which goes through C's `strtol` and `atoi`:
//! leading white space and a sign are accepted, `0x10` is not a decimal number.

fn is_c_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// `strtol(s, &end, 10)` that must consume all of `s`; `None` on garbage or overflow.
pub(crate) fn strtol_full(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && is_c_space(b[i]) {
        i += 1;
    }
    let neg = match b.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let start = i;
    let mut v: i64 = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        let d = i64::from(b[i] - b'0');
        v = v.checked_mul(10)?.checked_add(d)?;
        i += 1;
    }
    if i == start || i != b.len() {
        return None;
    }
    Some(if neg { -v } else { v })
}

/// ipvsadm's `string_to_number`: a full decimal number within `min..=max`.
pub(crate) fn number_in(s: &str, min: i64, max: i64) -> Option<i64> {
    strtol_full(s).filter(|n| (min..=max).contains(n))
}

/// C's `atoi`: the leading number of `s`, 0 if there is none.
pub(crate) fn atoi(s: &str) -> i64 {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && is_c_space(b[i]) {
        i += 1;
    }
    let neg = match b.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let mut v: i64 = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        v = v.saturating_mul(10).saturating_add(i64::from(b[i] - b'0'));
        i += 1;
    }
    if neg {
        -v
    } else {
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strtol_rules() {
        assert_eq!(number_in("80", 0, 65535), Some(80));
        assert_eq!(number_in(" +80", 0, 65535), Some(80));
        assert_eq!(number_in("-0", 0, 65535), Some(0));
        assert_eq!(number_in("65536", 0, 65535), None);
        assert_eq!(number_in("-1", 0, 65535), None);
        assert_eq!(number_in("0x10", 0, 65535), None);
        assert_eq!(number_in("80 ", 0, 65535), None);
        assert_eq!(number_in("", 0, 65535), None);
        assert_eq!(number_in("+", 0, 65535), None);
        assert_eq!(number_in("99999999999999999999", 0, i64::MAX), None);
    }

    #[test]
    fn atoi_takes_the_leading_number() {
        assert_eq!(atoi("64abc"), 64);
        assert_eq!(atoi("abc"), 0);
        assert_eq!(atoi(" -3"), -3);
    }
}

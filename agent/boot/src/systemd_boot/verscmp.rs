//! systemd's `strverscmp_improved()` (src/fundamental/string-util-fundamental.c, the UAPI
//! version format), which systemd-boot uses to order entries by version and by id. Ported
//! rule by rule, because the order decides which slot boots: a "close enough" comparison
//! would make `primary()` disagree with the firmware on exactly the names that matter.
//!
//! Segments are runs of letters or digits; `~` sorts before everything (pre-releases), then
//! `-`, `^`, `.` mark segment kinds; every other character is a separator and is dropped.
//! Numeric segments compare as numbers (leading zeros ignored) and are newer than alpha ones.

use std::cmp::Ordering;

fn is_version_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'~' | b'-' | b'^' | b'.')
}

/// `Ordering::Greater` when `a` is the newer version.
pub fn compare(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    // `*a` of the C code: NUL past the end.
    let head = |s: &[u8]| s.first().copied().unwrap_or(0);
    loop {
        while !a.is_empty() && !is_version_char(a[0]) {
            a = &a[1..];
        }
        while !b.is_empty() && !is_version_char(b[0]) {
            b = &b[1..];
        }
        // '~' (pre-release) is older than anything, even the end of the string.
        if head(a) == b'~' || head(b) == b'~' {
            let r = (head(a) != b'~').cmp(&(head(b) != b'~'));
            if r.is_ne() {
                return r;
            }
            a = &a[1..];
            b = &b[1..];
        }
        if a.is_empty() || b.is_empty() {
            return head(a).cmp(&head(b));
        }
        for sep in [b'-', b'^', b'.'] {
            if head(a) == sep || head(b) == sep {
                let r = (head(a) != sep).cmp(&(head(b) != sep));
                if r.is_ne() {
                    return r;
                }
                a = &a[1..];
                b = &b[1..];
            }
        }
        let (sa, sb);
        if head(a).is_ascii_digit() || head(b).is_ascii_digit() {
            let la = a.iter().take_while(|c| c.is_ascii_digit()).count();
            let lb = b.iter().take_while(|c| c.is_ascii_digit()).count();
            // A numeric segment is newer than none (an alpha segment or the end).
            let r = (la != 0).cmp(&(lb != 0));
            if r.is_ne() {
                return r;
            }
            let (na, nb) = (trim_zeros(&a[..la]), trim_zeros(&b[..lb]));
            let r = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
            if r.is_ne() {
                return r;
            }
            (sa, sb) = (la, lb);
        } else {
            let la = a.iter().take_while(|c| c.is_ascii_alphabetic()).count();
            let lb = b.iter().take_while(|c| c.is_ascii_alphabetic()).count();
            let n = la.min(lb);
            let r = a[..n].cmp(&b[..n]).then(la.cmp(&lb));
            if r.is_ne() {
                return r;
            }
            (sa, sb) = (la, lb);
        }
        a = &a[sa..];
        b = &b[sb..];
    }
}

fn trim_zeros(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|c| **c == b'0').count();
    &s[n..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_documented_uapi_order() {
        // The list from systemd's own comment, oldest first.
        let order = [
            "122.1",
            "123~rc1-1",
            "123",
            "123-a",
            "123-a.1",
            "123-1",
            "123-1.1",
            "123^post1",
            "123.a-1",
            "123.1-1",
            "123a-1",
            "124-1",
        ];
        for w in order.windows(2) {
            assert_eq!(compare(w[0], w[1]), Ordering::Less, "{} < {}", w[0], w[1]);
            assert_eq!(
                compare(w[1], w[0]),
                Ordering::Greater,
                "{} > {}",
                w[1],
                w[0]
            );
        }
        assert_eq!(compare("00123", "123"), Ordering::Equal);
        assert_eq!(compare("123_a", "123a"), Ordering::Equal);
    }

    #[test]
    fn generation_before_bootname_decides_entry_ids() {
        assert_eq!(
            compare("outpost_10-a.efi", "outpost_9-b.efi"),
            Ordering::Greater
        );
        assert_eq!(
            compare("outpost_2-a.efi", "outpost_2-b.efi"),
            Ordering::Less
        );
        assert_eq!(compare("", ""), Ordering::Equal);
        assert_eq!(compare("1", ""), Ordering::Greater);
    }
}

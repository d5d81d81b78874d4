//! Downgrade protection: RAUC's `min-bundle-version` comparison (`r_semver_less_equal`,
//! RAUC ≥ 1.12): `MAJOR[.MINOR[.PATCH]][-pre.release][+build]`, missing core parts are 0,
//! a pre-release sorts before its release, `+build` is ignored.

use std::cmp::Ordering;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a semantic version (MAJOR[.MINOR[.PATCH]][-PRE][+BUILD])")]
pub struct VersionError(pub String);

#[derive(Debug, Clone, PartialEq, Eq)]
struct SemVer<'a> {
    core: [u64; 3],
    pre: Option<&'a str>,
}

fn parse(v: &str) -> Result<SemVer<'_>, VersionError> {
    let err = || VersionError(v.to_string());
    // RAUC cuts at the *last* '+' and then at the last '-'.
    let rest = v.rfind('+').map_or(v, |i| &v[..i]);
    let (core_str, pre) = match rest.rfind('-') {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    if core_str.is_empty() {
        return Err(err());
    }
    let mut core = [0u64; 3];
    // g_strsplit(.., ".", 3): a fourth component stays glued to the third and fails to parse.
    for (slot, part) in core.iter_mut().zip(core_str.splitn(3, '.')) {
        *slot = number(part).ok_or_else(err)?;
    }
    Ok(SemVer { core, pre })
}

/// `g_ascii_string_to_unsigned(.., 10, ..)`: digits only, no sign, no blanks.
fn number(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn cmp_pre(a: &str, b: &str) -> Ordering {
    let (mut fa, mut fb) = (a.split('.'), b.split('.'));
    loop {
        match (fa.next(), fb.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let o = match (number(x), number(y)) {
                    (Some(p), Some(q)) => p.cmp(&q),
                    (Some(_), None) => Ordering::Less,
                    (None, Some(_)) => Ordering::Greater,
                    (None, None) => x.cmp(y),
                };
                if o != Ordering::Equal {
                    return o;
                }
            }
        }
    }
}

/// Whether `min <= version`.
pub fn at_least(version: &str, min: &str) -> Result<bool, VersionError> {
    let (a, b) = (parse(min)?, parse(version)?);
    let o = a.core.cmp(&b.core).then_with(|| match (a.pre, b.pre) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(p), Some(q)) => cmp_pre(p, q),
    });
    Ok(o != Ordering::Greater)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_like_rauc() {
        let yes = [
            ("1.0", "1.0"),
            ("1.0.1", "1.0"),
            ("2", "1.9.9"),
            ("2026.11.0", "2026.10.3"),
            ("1.0.0", "1.0.0-rc1"),
            ("1.0.0-rc.2", "1.0.0-rc.1"),
            ("1.0.0-rc.a", "1.0.0-rc.1"),
            ("1.0.0-rc.1.1", "1.0.0-rc.1"),
            ("1.0.0+b2", "1.0.0+b9"),
        ];
        for (v, min) in yes {
            assert_eq!(at_least(v, min), Ok(true), "{v} >= {min}");
            if v.split('+').next() != min.split('+').next() {
                assert_eq!(at_least(min, v), Ok(false), "{min} < {v}");
            }
        }
    }

    #[test]
    fn refuses_what_rauc_cannot_parse() {
        for bad in ["", "v1.0", "1.2.3.4", "1..2", "-rc1", "1.x"] {
            assert!(at_least(bad, "1.0").is_err(), "{bad:?}");
            assert!(at_least("1.0", bad).is_err(), "{bad:?}");
        }
    }
}

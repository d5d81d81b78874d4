//! systemd-boot's `efi_fnmatch()`: the glob of `default` in loader.conf and of the
//! `LoaderEntryDefault`/`LoaderEntryOneShot` variables. `*`, `?`, `[...]` with ranges and `!`
//! negation, `\` escapes. Callers lower-case both sides first, as systemd-boot does.

/// Whether `name` matches `pattern` as a whole.
pub fn matches(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    glob(&p, &n)
}

fn glob(p: &[char], n: &[char]) -> bool {
    // Iterative with one backtrack point for the last '*': linear enough for patterns of a
    // config line and no recursion depth to exhaust on hostile input.
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() {
            match p[pi] {
                '*' => {
                    star = Some((pi, ni));
                    pi += 1;
                    continue;
                }
                '?' => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                '[' => {
                    if let Some((hit, next)) = class(&p[pi..], n[ni]) {
                        if hit {
                            pi += next;
                            ni += 1;
                            continue;
                        }
                    } else if n[ni] == '[' {
                        // An unterminated '[' is a literal.
                        pi += 1;
                        ni += 1;
                        continue;
                    }
                }
                '\\' if pi + 1 < p.len() && p[pi + 1] == n[ni] => {
                    pi += 2;
                    ni += 1;
                    continue;
                }
                // An escaped character that differs: no match here.
                '\\' if pi + 1 < p.len() => {}
                c if c == n[ni] => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, sn)) => {
                pi = sp + 1;
                ni = sn + 1;
                star = Some((sp, sn + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Matches `c` against the class at the start of `p` (`[...]`): `(matched, pattern length)`,
/// or `None` if the class is not terminated.
fn class(p: &[char], c: char) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = p.get(i) == Some(&'!');
    if negate {
        i += 1;
    }
    let mut hit = false;
    let mut first = true;
    loop {
        let lo = *p.get(i)?;
        if lo == ']' && !first {
            return Some((hit != negate, i + 1));
        }
        first = false;
        if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|h| *h != ']') {
            let hi = p[i + 2];
            hit |= lo <= c && c <= hi;
            i += 3;
        } else {
            hit |= lo == c;
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn globs_like_efi_fnmatch() {
        assert!(matches("outpost_*", "outpost_3-b.efi"));
        assert!(matches("*-b.efi", "outpost_3-b.efi"));
        assert!(!matches("*-b.efi", "outpost_3-b+3.efi"));
        assert!(matches("*-b*.efi", "outpost_3-b+3.efi"));
        assert!(matches("outpost_?-[ab].efi", "outpost_3-a.efi"));
        assert!(!matches("outpost_?-[!ab].efi", "outpost_3-a.efi"));
        assert!(matches("outpost_[0-9]-a.efi", "outpost_7-a.efi"));
        assert!(matches("a\\*b", "a*b"));
        assert!(!matches("a\\*b", "axb"));
        assert!(matches("*", ""));
        assert!(!matches("", "x"));
        assert!(matches("[x", "[x"));
        assert!(matches("**a**b**", "xxaxxbxx"));
    }
}

//! `g_ascii_strtoull` as RAUC uses it to read env values: leading whitespace, optional sign,
//! optional `0x` (base 16 or 0), the longest run of digits, trailing garbage ignored, and 0 when
//! there are no digits. Matching it exactly matters: RAUC reads `A_OK=1x` as 1 and `BOOT_A_LEFT=`
//! as 0, and an agent that disagreed would pick a different primary slot than RAUC would.

/// `base` is 0 (auto: `0x` hex, leading `0` octal, else decimal) or 16.
pub(crate) fn strtoull(s: &str, base: u32) -> u64 {
    let mut b = s
        .trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c'])
        .as_bytes();
    let mut negative = false;
    if let Some((&sign, rest)) = b.split_first() {
        if sign == b'-' || sign == b'+' {
            negative = sign == b'-';
            b = rest;
        }
    }
    let has_hex_prefix =
        b.len() > 2 && b[0] == b'0' && (b[1] | 0x20) == b'x' && b[2].is_ascii_hexdigit();
    let radix = match base {
        16 => {
            if has_hex_prefix {
                b = &b[2..];
            }
            16
        }
        _ if has_hex_prefix => {
            b = &b[2..];
            16
        }
        _ if b.first() == Some(&b'0') => 8,
        _ => 10,
    };
    let mut value: u64 = 0;
    for &c in b {
        let Some(d) = char::from(c).to_digit(radix) else {
            break;
        };
        // strtoull saturates at ULLONG_MAX on overflow (ERANGE).
        value = match value
            .checked_mul(u64::from(radix))
            .and_then(|v| v.checked_add(u64::from(d)))
        {
            Some(v) => v,
            None => return u64::MAX,
        };
    }
    // strtoull negates in unsigned arithmetic: "-1" is ULLONG_MAX.
    if negative {
        value.wrapping_neg()
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::strtoull;

    #[test]
    fn base0_like_glib() {
        assert_eq!(strtoull("1", 0), 1);
        assert_eq!(strtoull(" 1\n", 0), 1);
        assert_eq!(strtoull("0x1", 0), 1);
        assert_eq!(strtoull("010", 0), 8);
        assert_eq!(strtoull("1x", 0), 1);
        assert_eq!(strtoull("", 0), 0);
        assert_eq!(strtoull("yes", 0), 0);
        assert_eq!(strtoull("-1", 0), u64::MAX);
        assert_eq!(strtoull("99999999999999999999999", 0), u64::MAX);
    }

    #[test]
    fn base16_like_glib() {
        assert_eq!(strtoull("a", 16), 10);
        assert_eq!(strtoull("0xA", 16), 10);
        assert_eq!(strtoull("10", 16), 16);
        assert_eq!(strtoull("0x", 16), 0);
        assert_eq!(strtoull("g", 16), 0);
    }
}

//! Bit-reversed object names for WAL entries and manifest versions.
//!
//! The 64 bits of the number are written in reverse order as `0`/`1`
//! characters, so consecutive numbers differ in their first character and
//! land on different object-store partitions. Listing order is meaningless:
//! callers parse every name to find a minimum or maximum.

/// Number of characters in a bit-reversed stem.
pub const STEM_LEN: usize = 64;

/// `bitrev(n)` followed by `.ext`.
pub fn bit_reversed_name(n: u64, ext: &str) -> String {
    let mut name = String::with_capacity(STEM_LEN + 1 + ext.len());
    name.push_str(&bit_reversed_stem(n));
    name.push('.');
    name.push_str(ext);
    name
}

/// The 64-character stem: bit 0 of `n` first.
pub fn bit_reversed_stem(n: u64) -> String {
    (0..64)
        .map(|bit| if n >> bit & 1 == 1 { '1' } else { '0' })
        .collect()
}

/// Inverse of [`bit_reversed_name`]; `None` for any other name, including
/// staging files, names with a different extension, or stems of the wrong length.
pub fn parse_bit_reversed_name(name: &str, ext: &str) -> Option<u64> {
    let stem = name.strip_suffix(ext)?.strip_suffix('.')?;
    if stem.len() != STEM_LEN {
        return None;
    }
    let mut n = 0u64;
    for (bit, c) in stem.bytes().enumerate() {
        match c {
            b'1' => n |= 1 << bit,
            b'0' => {}
            _ => return None,
        }
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_numbers_read_left_to_right_from_bit_zero() {
        assert_eq!(
            bit_reversed_name(1, "arrow"),
            format!("1{}.arrow", "0".repeat(63))
        );
        assert_eq!(
            bit_reversed_name(5, "binpb"),
            format!("101{}.binpb", "0".repeat(61))
        );
        assert_eq!(bit_reversed_stem(0), "0".repeat(64));
        assert_eq!(bit_reversed_stem(u64::MAX), "1".repeat(64));
    }

    #[test]
    fn names_round_trip() {
        for n in [0, 1, 2, 3, 5, 1000, 1 << 40, u64::MAX - 1, u64::MAX] {
            assert_eq!(
                parse_bit_reversed_name(&bit_reversed_name(n, "arrow"), "arrow"),
                Some(n)
            );
        }
    }

    #[test]
    fn foreign_names_do_not_parse() {
        let good = bit_reversed_name(7, "arrow");
        assert_eq!(parse_bit_reversed_name(&good, "binpb"), None);
        assert_eq!(parse_bit_reversed_name(&format!("{good}#1"), "arrow"), None);
        assert_eq!(parse_bit_reversed_name(&good[1..], "arrow"), None);
        assert_eq!(parse_bit_reversed_name(&format!("0{good}"), "arrow"), None);
        assert_eq!(
            parse_bit_reversed_name(&format!("{}.arrow", "2".repeat(64)), "arrow"),
            None
        );
        assert_eq!(parse_bit_reversed_name("version_hint.json", "json"), None);
    }
}

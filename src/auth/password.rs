//! Passwords: SHA-256 hashing (how users store them, and the `#<hash>` rule form), the
//! constant-time comparison AUTH uses, and ACL GENPASS's random hex.
//!
//! Passwords are never stored in clear: `>secret` keeps only the lowercase hex SHA-256, as Redis
//! does, so ACL LIST, ACL GETUSER and ACL SAVE show hashes only.

use sha2::{Digest, Sha256};

/// Characters in a hashed password: 32 bytes of SHA-256 as lowercase hex.
pub const HASH_LEN: usize = 64;

/// Bits of an ACL GENPASS password when none are asked for (Redis's default).
pub const GENPASS_DEFAULT_BITS: u64 = 256;

/// The most bits ACL GENPASS produces (Redis's `GENPASS_MAX_BITS`).
pub const GENPASS_MAX_BITS: u64 = 4096;

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 0xf) as usize] as char);
    }
    s
}

/// The stored form of a clear-text password: lowercase hex SHA-256 (Redis's `ACLHashPassword`).
pub fn hash(clear: &[u8]) -> String {
    hex(&Sha256::digest(clear))
}

/// Whether `h` is a stored hash as `#<hash>` accepts it: exactly 64 of `0-9a-f`.
pub fn is_valid_hash(h: &[u8]) -> bool {
    h.len() == HASH_LEN && h.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

/// Compares two byte strings in time that depends only on their lengths, never on where they
/// differ: every byte pair is XORed and the results ORed together, with no early exit. The
/// strings compared are hashes of equal length, so not even the length leaks.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let len_diff = (a.len() ^ b.len()) as u64;
    let n = a.len().min(b.len());
    let diff = a[..n]
        .iter()
        .zip(&b[..n])
        .fold(0u8, |acc, (x, y)| acc | (x ^ y));
    (u64::from(diff) | len_diff) == 0
}

/// Whether `clear` matches any of the stored hashes. Every hash is compared, in constant time.
pub fn matches_any(clear: &[u8], hashes: &[String]) -> bool {
    let h = hash(clear);
    hashes.iter().fold(false, |ok, stored| {
        constant_time_eq(h.as_bytes(), stored.as_bytes()) | ok
    })
}

/// `bits` of randomness from the operating system as `ceil(bits / 4)` hex characters
/// (ACL GENPASS).
pub fn genpass(bits: u64) -> Result<String, getrandom::Error> {
    let chars = bits.div_ceil(4) as usize;
    let mut raw = vec![0u8; chars.div_ceil(2)];
    getrandom::fill(&mut raw)?;
    let mut s = hex(&raw);
    s.truncate(chars);
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_redis_sha256_hex() {
        // `ACL SETUSER u >foobar` then `ACL GETUSER u` on redis-server shows this hash.
        assert_eq!(
            hash(b"foobar"),
            "c3ab8ff13720e8ad9047dd39466b3c8974e592c2fa383d4a3960714caef0c4f2"
        );
    }

    #[test]
    fn constant_time_eq_compares_whole_strings() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn hash_validation() {
        assert!(is_valid_hash(hash(b"x").as_bytes()));
        assert!(!is_valid_hash(hash(b"x").to_uppercase().as_bytes()));
        assert!(!is_valid_hash(b"abc"));
    }

    #[test]
    fn genpass_lengths() {
        assert_eq!(genpass(256).unwrap().len(), 64);
        assert_eq!(genpass(5).unwrap().len(), 2);
        assert_eq!(genpass(1).unwrap().len(), 1);
        assert_ne!(genpass(128).unwrap(), genpass(128).unwrap());
    }
}

//! Hash slots: Redis Cluster's CRC16 (XMODEM) of a key, or of its `{hash tag}`, modulo 16,384.
//! For pub/sub the key is the shard channel of SSUBSCRIBE, SUNSUBSCRIBE and SPUBLISH.

/// Redis Cluster's number of hash slots (`CLUSTER_SLOTS`).
pub const SLOTS: u16 = 16384;

/// CRC16-CCITT (XMODEM: polynomial 0x1021, initial value 0, no reflection), as Redis's crc16.c.
pub fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in data {
        crc ^= (b as u16) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The hash slot of a key, as Redis's `keyHashSlot`: if the key holds a `{` followed later by a
/// `}` with at least one byte between them, only those bytes are hashed (the first `{` and the
/// first `}` after it count); `{}` with nothing inside hashes the whole key.
pub fn key_slot(key: &[u8]) -> u16 {
    let tagged = memchr::memchr(b'{', key).and_then(|open| {
        let rest = &key[open + 1..];
        memchr::memchr(b'}', rest)
            .filter(|&close| close > 0)
            .map(|close| &rest[..close])
    });
    crc16(tagged.unwrap_or(key)) & (SLOTS - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_matches_the_redis_cluster_spec_test_vector() {
        // The Redis Cluster specification: CRC16 of "123456789" is 0x31C3.
        assert_eq!(crc16(b"123456789"), 0x31c3);
        assert_eq!(crc16(b""), 0);
    }

    #[test]
    fn key_slots_match_redis() {
        // Values from CLUSTER KEYSLOT on redis-server 7.2.4.
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"bar"), 5061);
        assert_eq!(key_slot(b"foo{bar}"), 5061);
        assert_eq!(key_slot(b"123456789"), 0x31c3 & 0x3fff);
        assert_eq!(key_slot(b""), 0);
    }

    #[test]
    fn hash_tags_hash_only_the_first_braces() {
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"{user1000}.followers"), key_slot(b"user1000"));
        // Only the first `{` and the first `}` after it count.
        assert_eq!(key_slot(b"foo{{bar}}zap"), key_slot(b"{bar"));
        assert_eq!(key_slot(b"foo{bar}{zap}"), key_slot(b"bar"));
        // A `}` before the first `{` is ordinary.
        assert_eq!(key_slot(b"}a{b}"), key_slot(b"b"));
        // No closing brace: the whole key.
        assert_eq!(key_slot(b"foo{bar"), crc16(b"foo{bar") & 0x3fff);
    }

    #[test]
    fn empty_hash_tag_hashes_the_whole_key() {
        // Redis: `{}x` is slot 10595, the CRC16 of all three bytes.
        assert_eq!(key_slot(b"{}x"), 10595);
        assert_eq!(key_slot(b"foo{}{bar}"), crc16(b"foo{}{bar}") & 0x3fff);
    }

    #[test]
    fn socket_io_sharded_channels_hash_whole() {
        // `<prefix>#<namespace>#<room>#` has no braces: channels spread over the slots.
        assert_ne!(key_slot(b"socket.io#/#"), key_slot(b"socket.io#/#room1#"));
    }
}

//! Opaque ids the gateway hands out: version ids and upload ids.
//!
//! Both are 32 lower-case hex digits: 48 bits of milliseconds since the epoch
//! followed by 80 random bits, so they are unique, roughly time ordered and
//! safe in URLs and XML without escaping.

/// A fresh version id.
pub(crate) fn version_id() -> String {
    time_random()
}

/// A fresh multipart upload id.
pub(crate) fn upload_id() -> String {
    time_random()
}

/// Milliseconds since the Unix epoch, as the metadata model counts time.
pub(crate) fn now_millis() -> i64 {
    let now = time::OffsetDateTime::now_utc();
    i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn time_random() -> String {
    let millis = u64::try_from(now_millis()).unwrap_or(0) & 0xFFFF_FFFF_FFFF;
    let random: [u8; 10] = rand::random();
    format!("{millis:012x}{}", hex::encode(random))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_hex() {
        let a = version_id();
        let b = version_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
    }
}

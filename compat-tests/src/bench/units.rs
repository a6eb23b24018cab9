//! Byte sizes and durations as people write them on a command line
//! (`4KiB`, `64MiB`, `1.5GB`, `30s`, `500ms`, `2m`), and back.

use std::time::Duration;

/// Binary and decimal size suffixes with their multipliers, longest first so
/// that `KiB` is tried before `B`.
const SIZE_UNITS: &[(&str, f64)] = &[
    ("kib", 1024.0),
    ("mib", 1024.0 * 1024.0),
    ("gib", 1024.0 * 1024.0 * 1024.0),
    ("tib", 1024.0 * 1024.0 * 1024.0 * 1024.0),
    ("ki", 1024.0),
    ("mi", 1024.0 * 1024.0),
    ("gi", 1024.0 * 1024.0 * 1024.0),
    ("kb", 1e3),
    ("mb", 1e6),
    ("gb", 1e9),
    ("tb", 1e12),
    ("k", 1e3),
    ("m", 1e6),
    ("g", 1e9),
    ("b", 1.0),
];

/// Duration suffixes with their length in seconds, longest first.
const DURATION_UNITS: &[(&str, f64)] = &[
    ("ms", 1e-3),
    ("us", 1e-6),
    ("s", 1.0),
    ("m", 60.0),
    ("h", 3600.0),
];

/// Splits `text` into its number and a unit from `units` (none: `1.0`).
fn split_number_unit(text: &str, units: &[(&str, f64)]) -> Result<(f64, f64), String> {
    let text = text.trim();
    let lower = text.to_ascii_lowercase();
    let (number, factor) = units
        .iter()
        .find_map(|(suffix, factor)| lower.strip_suffix(suffix).map(|n| (n, *factor)))
        .unwrap_or((lower.as_str(), 1.0));
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number with an optional unit"))?;
    if !value.is_finite() || value < 0.0 {
        return Err(format!("`{text}` must be a non-negative number"));
    }
    Ok((value, factor))
}

/// Parses a byte size: a plain number of bytes, or a number with a binary
/// (`KiB`, `MiB`, `GiB`, `TiB`) or decimal (`KB`, `MB`, `GB`, `TB`) suffix.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let (value, factor) = split_number_unit(text, SIZE_UNITS)?;
    let bytes = (value * factor).round();
    if bytes > u64::MAX as f64 {
        return Err(format!("`{text}` is too large"));
    }
    Ok(bytes as u64)
}

/// Parses a duration: a number of seconds, or a number with `ms`, `us`, `s`,
/// `m` or `h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let (value, factor) = split_number_unit(text, DURATION_UNITS)?;
    Duration::try_from_secs_f64(value * factor).map_err(|e| format!("`{text}`: {e}"))
}

/// Prints a size with the largest binary unit that keeps it at or above 1.
pub fn format_size(bytes: u64) -> String {
    const NAMES: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < NAMES.len() {
        value /= 1024.0;
        unit += 1;
    }
    if value.fract() == 0.0 {
        format!("{value} {}", NAMES[unit])
    } else {
        format!("{value:.1} {}", NAMES[unit])
    }
}

/// Prints a latency with three significant digits in µs, ms or s.
pub fn format_latency(latency: Duration) -> String {
    let micros = latency.as_secs_f64() * 1e6;
    if micros < 1e3 {
        format!("{micros:.0}µs")
    } else if micros < 1e6 {
        format!("{:.1}ms", micros / 1e3)
    } else {
        format!("{:.2}s", micros / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_binary_and_decimal_units() {
        assert_eq!(parse_size("4KiB"), Ok(4096));
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("1gib"), Ok(1 << 30));
        assert_eq!(parse_size("4KB"), Ok(4000));
        assert_eq!(parse_size("1.5MB"), Ok(1_500_000));
        assert_eq!(parse_size("123"), Ok(123));
        assert_eq!(parse_size("10 B"), Ok(10));
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("-1KiB").is_err());
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn sizes_and_latencies_print_readably() {
        assert_eq!(format_size(64 << 20), "64 MiB");
        assert_eq!(format_size(4096), "4 KiB");
        assert_eq!(format_size(1536), "1.5 KiB");
        assert_eq!(format_size(100), "100 B");
        assert_eq!(format_latency(Duration::from_micros(250)), "250µs");
        assert_eq!(format_latency(Duration::from_micros(12_340)), "12.3ms");
        assert_eq!(format_latency(Duration::from_millis(2_500)), "2.50s");
    }
}

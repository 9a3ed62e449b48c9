//! Wall-clock timestamps in the shape the Python qcc wrote: "2025-10-17T10:05:00.123456" (UTC).

use std::time::{SystemTime, UNIX_EPOCH};

pub fn iso(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = civil_from_days(days as i64);
    format!("{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:06}", rem / 3600, rem % 3600 / 60, rem % 60, d.subsec_micros())
}

/// The UTC date of `t`, "2025-10-17" (the day buckets of the usage file).
pub fn date(t: SystemTime) -> String {
    let days = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() / 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64, micros: u32) -> String {
        iso(UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(u64::from(micros)))
    }

    #[test]
    fn known_instants() {
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000000");
        assert_eq!(at(1_760_695_500, 123_456), "2025-10-17T10:05:00.123456");
        assert_eq!(at(1_709_164_800, 0), "2024-02-29T00:00:00.000000");
        assert_eq!(at(4_107_542_399, 999_999), "2100-02-28T23:59:59.999999");
        assert_eq!(at(4_107_542_400, 0), "2100-03-01T00:00:00.000000");
    }
}

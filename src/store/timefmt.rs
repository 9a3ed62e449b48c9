//! Wall-clock timestamps in the shape the Python qcc wrote: "2025-10-17T10:05:00.123456" (UTC).

use std::time::{SystemTime, UNIX_EPOCH};

pub fn iso(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = civil_from_days(days as i64);
    format!("{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:06}", rem / 3600, rem % 3600 / 60, rem % 60, d.subsec_micros())
}

/// The UTC day number of `t` (days since 1970-01-01).
pub fn day_number(t: SystemTime) -> i64 {
    (t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() / 86_400) as i64
}

/// The UTC date of `t`, "2025-10-17" (the day buckets of the usage file).
pub fn date(t: SystemTime) -> String {
    let days = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() / 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

/// An RFC 3339 time (`2026-12-02T12:04:00Z`, fractions and `+hh:mm` offsets allowed), as the
/// Anthropic API writes its rate-limit resets; `None` for anything else.
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let b = s.trim().as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(r)?;
        part.iter().all(u8::is_ascii_digit).then(|| part.iter().fold(0i64, |n, d| n * 10 + i64::from(d - b'0')))
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (y, mo, d, h, mi, se) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
    }
    let offset = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let m = num(i + 1..i + 3)? * 60 + num(i + 4..i + 6)?;
            if *sign == b'+' {
                m * 60
            } else {
                -m * 60
            }
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo as u32, d as u32);
    let secs = days * 86_400 + h * 3600 + mi * 60 + se - offset;
    u64::try_from(secs).ok().map(|s| UNIX_EPOCH + std::time::Duration::from_secs(s))
}

/// (year, month, day) to days since 1970-01-01 (H. Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from(if m > 2 { m - 3 } else { m + 9 });
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
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

    #[test]
    fn rfc3339_as_the_api_writes_it() {
        let t = |s: &str| parse_rfc3339(s).map(|t| t.duration_since(UNIX_EPOCH).unwrap().as_secs());
        assert_eq!(t("2025-10-17T10:05:00Z"), Some(1_760_695_500));
        assert_eq!(t("2025-10-17T10:05:00.123Z"), Some(1_760_695_500));
        assert_eq!(t("2025-10-17T12:05:00+02:00"), Some(1_760_695_500));
        assert_eq!(t("2024-02-29T00:00:00Z"), Some(1_709_164_800));
        for bad in ["", "2025-10-17", "2025-13-01T00:00:00Z", "2025-10-17T10:05:00", "soon", "2025-10-17T10:05:00+0200"]
        {
            assert_eq!(t(bad), None, "{bad}");
        }
    }
}

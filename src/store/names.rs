//! Endpoint names and ids: what they may contain, the name an endpoint gets when none is given
//! (its host, made unique in the cluster), and the ids qcc makes.

use std::time::SystemTime;

use super::url::BaseUrl;

/// `value` is 1 to 64 ASCII letters, digits and `extra`'s characters; else one line naming
/// `what`, with the value cleaned and clipped for the terminal.
fn check_chars(what: &str, value: &str, extra: &str) -> std::result::Result<(), String> {
    let ok = |c: char| c.is_ascii_alphanumeric() || extra.contains(c);
    if value.is_empty() || value.len() > 64 || !value.chars().all(ok) {
        let listed: Vec<String> = extra.chars().map(String::from).collect();
        return Err(format!(
            "{what} {:?}: use 1 to 64 letters, digits and {}",
            crate::mask::clean(crate::mask::clip(value, 80)),
            listed.join(" ")
        ));
    }
    Ok(())
}

/// Names are what people type and read: letters, digits and `. _ -`, 1 to 64 of them (a host
/// name fits).
pub fn check_name(name: &str) -> std::result::Result<(), String> {
    check_chars("endpoint name", name, NAME_CHARS)
}

/// What a name may hold besides ASCII letters and digits.
const NAME_CHARS: &str = "._-";

/// The host of a base URL as an endpoint name (`api.example.com`).
pub(super) fn host_of(url: &str) -> String {
    let host = BaseUrl::parse(url).map(|u| u.host).unwrap_or_default();
    let host: String =
        host.chars().map(|c| if c.is_ascii_alphanumeric() || NAME_CHARS.contains(c) { c } else { '-' }).collect();
    if host.is_empty() {
        "endpoint".to_string()
    } else {
        crate::mask::clip(&host, 60).to_string()
    }
}

pub(super) fn first_free(base: &str, taken: &std::collections::HashSet<&str>) -> String {
    if !taken.contains(base) {
        return base.to_string();
    }
    (2..).map(|i| format!("{base}-{i}")).find(|n| !taken.contains(n.as_str())).unwrap_or_else(|| base.to_string())
}

/// Ids are shown in `/metrics` labels, URLs and the dashboard's buttons: letters, digits and
/// `. _ - ~ : @ +`, at most 64 of them (the Python qcc makes 8 hex digits).
pub fn check_id(id: &str) -> std::result::Result<(), String> {
    check_chars("endpoint id", id, "._-~:@+")
}

/// A stable 8-hex id for a single-endpoint profile (FNV-1a of its name).
pub(super) fn fnv_id(name: &str) -> String {
    format!("{:08x}", fnv1a(name.as_bytes()) as u32)
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}

/// A new 8-hex id not in `taken`, from the clock, pid and a counter (no RNG crate needed).
pub(super) fn fresh_id(taken: &[String]) -> String {
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    for n in 0u32.. {
        let seed = format!("{nanos}:{}:{n}", std::process::id());
        let id = format!("{:08x}", (fnv1a(seed.as_bytes()) >> 16) as u32);
        if !taken.contains(&id) {
            return id;
        }
    }
    unreachable!("u32 ids exhausted")
}

//! Endpoint names and ids: what they may contain, the name an endpoint gets when none is given
//! (its host, made unique in the cluster), and the ids qcc makes.

use std::time::SystemTime;

use super::cluster::EndpointConfig;
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

/// `base`, or `base-2`, `base-3` ...: the first that no endpoint of `others` is called (nor has
/// as its id).
pub(super) fn unique_name(base: &str, others: &[EndpointConfig]) -> String {
    let taken: std::collections::HashSet<&str> = others.iter().flat_map(|e| [e.name.as_str(), e.id.as_str()]).collect();
    first_free(base, &taken)
}

fn first_free(base: &str, taken: &std::collections::HashSet<&str>) -> String {
    if !taken.contains(base) {
        return base.to_string();
    }
    (2..).map(|i| format!("{base}-{i}")).find(|n| !taken.contains(n.as_str())).unwrap_or_else(|| base.to_string())
}

/// Give every endpoint without a stored name its host's, made unique; refuse two endpoints of
/// one name, or a name that is another endpoint's id (a command could not tell them apart).
pub(super) fn name_endpoints(endpoints: &mut [EndpointConfig]) -> std::result::Result<(), String> {
    use std::collections::{HashMap, HashSet};
    let ids: HashMap<String, usize> = endpoints.iter().enumerate().map(|(i, e)| (e.id.clone(), i)).collect();
    let mut names: HashMap<String, usize> = HashMap::new();
    for (i, e) in endpoints.iter().enumerate().filter(|(_, e)| !e.name.is_empty()) {
        if let Some(j) = names.insert(e.name.clone(), i) {
            return Err(format!(
                "two endpoints are called '{}' ({} and {}); names must be unique in a cluster",
                e.name, endpoints[j].id, e.id
            ));
        }
    }
    let mut taken: HashSet<String> = names.keys().chain(ids.keys()).cloned().collect();
    // Where the search for a free `host-K` resumes, per host (many endpoints on one host).
    let mut next: HashMap<String, usize> = HashMap::new();
    for (i, ep) in endpoints.iter_mut().enumerate() {
        if ep.name.is_empty() {
            let base = host_of(&ep.url.to_string());
            let name = if taken.contains(&base) {
                let k = next.entry(base.clone()).or_insert(2);
                while taken.contains(&format!("{base}-{k}")) {
                    *k += 1;
                }
                format!("{base}-{k}")
            } else {
                base
            };
            taken.insert(name.clone());
            names.insert(name.clone(), i);
            ep.name = name;
        }
    }
    for (name, &i) in &names {
        if let Some(&j) = ids.get(name).filter(|&&j| j != i) {
            return Err(format!(
                "endpoint {} is called '{name}', which is the id of endpoint {}",
                endpoints[i].id, endpoints[j].name
            ));
        }
    }
    Ok(())
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

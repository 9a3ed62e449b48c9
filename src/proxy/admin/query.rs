//! A `/_qcc/` request's query parameters, percent-decoded as a browser's `encodeURIComponent`
//! makes them: what the dashboard's searches (`logs.rs`) and edits (`manage.rs`) read.

/// A query's parameters, decoded.
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    pub(crate) fn parse(query: &str) -> Params {
        Params(
            query
                .split('&')
                .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
                .filter(|(k, _)| !k.is_empty())
                .map(|(k, v)| (decode(k), decode(v)))
                .collect(),
        )
    }

    /// A parameter given (possibly empty).
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// A parameter given and not blank.
    pub(crate) fn text(&self, name: &str) -> Option<String> {
        self.get(name).map(str::trim).filter(|v| !v.is_empty()).map(str::to_string)
    }

    pub(crate) fn number<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, String> {
        self.text(name).map(|v| v.parse::<T>().map_err(|_| format!("{name}: {v:?} is not a whole number"))).transpose()
    }

    pub(crate) fn flag(&self, name: &str) -> Option<bool> {
        self.get(name).map(|v| matches!(v, "1" | "true" | "on" | "yes"))
    }
}

/// A query value, percent-decoded (`+` a space), as a browser's `encodeURIComponent` makes it.
fn decode(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                match std::str::from_utf8(&b[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(x) => {
                        out.push(x);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn query_values_are_decoded() {
        assert_eq!(super::decode("claude%2Dsonnet%3A4+x"), "claude-sonnet:4 x");
        assert_eq!(super::decode("100%"), "100%");
        assert_eq!(super::decode("%zz"), "%zz");
    }
}

//! Which upstream statuses fail over: a cluster's `retry_on` set. A status in it is the
//! endpoint's failure (blamed, retried elsewhere); any other status is the upstream's answer to
//! this request, relayed as is.

/// A set of HTTP status codes (100-599), a bit each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryOn([u64; 10]);

/// Today's set: the statuses an endpoint answers when it, not the request, is the problem.
pub const DEFAULT_RETRY_ON: [u16; 8] = [500, 502, 503, 504, 529, 429, 401, 403];

impl Default for RetryOn {
    fn default() -> RetryOn {
        RetryOn::from_codes(&DEFAULT_RETRY_ON).unwrap_or(RetryOn([0; 10]))
    }
}

impl RetryOn {
    /// The set of `codes`; an error names a code that is not a status a server answers with
    /// (100 to 599; 2xx and 3xx never fail over).
    pub fn from_codes(codes: &[u16]) -> Result<RetryOn, String> {
        let mut set = RetryOn([0; 10]);
        for &c in codes {
            if !(400..600).contains(&c) {
                return Err(format!("status {c}: only 4xx and 5xx statuses can fail over"));
            }
            set.0[(c / 64) as usize] |= 1 << (c % 64);
        }
        Ok(set)
    }

    /// `"500,502,529"` (spaces allowed).
    pub fn parse(list: &str) -> Result<RetryOn, String> {
        let codes: Result<Vec<u16>, String> = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<u16>().map_err(|_| format!("{s:?} is not a status code")))
            .collect();
        RetryOn::from_codes(&codes?)
    }

    pub fn contains(&self, status: u16) -> bool {
        status < 640 && self.0[(status / 64) as usize] & (1 << (status % 64)) != 0
    }

    pub fn codes(&self) -> Vec<u16> {
        (400..600).filter(|&c| self.contains(c)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_parse_and_refuse_what_cannot_fail_over() {
        let d = RetryOn::default();
        assert!(d.contains(529) && d.contains(401) && !d.contains(404) && !d.contains(200));
        assert_eq!(d.codes(), vec![401, 403, 429, 500, 502, 503, 504, 529]);
        let s = RetryOn::parse("500, 529").unwrap();
        assert_eq!(s.codes(), vec![500, 529]);
        assert!(RetryOn::parse("200").is_err());
        assert!(RetryOn::parse("5xx").is_err());
        assert!(RetryOn::parse("700").is_err());
        assert!(RetryOn::parse("").unwrap().codes().is_empty());
    }
}

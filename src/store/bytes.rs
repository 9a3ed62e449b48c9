//! The byte helpers the key files, the sync folder's seal, the service's access key and the
//! proxy's tokens share: random bytes from the system's CSPRNG and SHA-256 (both ring, already in
//! the tree through rustls), and lowercase hex.

use ring::rand::SecureRandom;

/// `N` random bytes from the system's CSPRNG.
pub fn random<const N: usize>() -> Result<[u8; N], String> {
    let mut b = [0u8; N];
    ring::rand::SystemRandom::new().fill(&mut b).map_err(|_| "the system's random number source failed".to_string())?;
    Ok(b)
}

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes of a hex string (either case); `None` for anything else.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

/// The 32 bytes of a 64-digit hex string (a SHA-256 as the keys file keeps it).
pub fn unhex32(s: &str) -> Option<[u8; 32]> {
    unhex(s)?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_refuses_garbage() {
        let b = random::<16>().unwrap();
        assert_eq!(unhex(&hex(&b)).unwrap(), b);
        assert_eq!(unhex32(&hex(&sha256(b"x"))), Some(sha256(b"x")));
        assert!(unhex("abc").is_none() && unhex("zz").is_none() && unhex32("00").is_none());
        assert_ne!(random::<16>().unwrap(), b);
    }
}

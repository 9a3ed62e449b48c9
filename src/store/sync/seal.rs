//! Secrets at rest in the sync folder: AES-256-GCM with a key from PBKDF2-HMAC-SHA256 (600,000
//! iterations, a random 16-byte salt per push), both from ring. Each secret is sealed on its own,
//! bound to where it sits (`profiles/work/endpoints/3f2a9c1d/api_key`) as the AEAD's associated
//! data, so a value moved to another endpoint, or changed by one bit, does not open.
//!
//! A sealed value is `enc:v1:` and the hex of nonce (12 bytes), ciphertext and tag.
//!
//! Sealing each value is not enough on its own: whoever can write the folder could re-point an
//! endpoint whose key is sealed to a URL of theirs (the key, opened here, would then go there),
//! add a plain client key, or strip the encryption. So the whole document is authenticated too:
//! an HMAC-SHA256 over its canonical form (`mac`), with a key derived from the passphrase's key
//! (HKDF-SHA256), is kept in `qcc_sync.encryption.mac` and checked before anything is opened.

use std::num::NonZeroU32;

use crate::store::bytes::{hex, random, unhex};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};

pub const PREFIX: &str = "enc:v1:";
pub const ITERATIONS: u32 = 600_000;
pub const CIPHER: &str = "AES-256-GCM";
pub const KDF: &str = "PBKDF2-HMAC-SHA256";
/// Sealed with the key at `check`: a wrong passphrase is told from a tampered value.
const CHECK_TEXT: &str = "qcc sync";

pub struct Sealer {
    key: LessSafeKey,
    /// Authenticates the whole document (derived from the same passphrase key).
    mac: ring::hmac::Key,
}

impl Sealer {
    /// The key for `passphrase` and `salt` (`iterations` as the file says, at least ours).
    pub fn new(passphrase: &[u8], salt: &[u8], iterations: u32) -> Result<Sealer, String> {
        let n = NonZeroU32::new(iterations).ok_or("0 iterations")?;
        let mut key = [0u8; 32];
        ring::pbkdf2::derive(ring::pbkdf2::PBKDF2_HMAC_SHA256, n, salt, passphrase, &mut key);
        let unbound = UnboundKey::new(&AES_256_GCM, &key).map_err(|_| "AES key setup failed".to_string())?;
        let prk = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, b"").extract(&key);
        let okm =
            prk.expand(&[b"qcc sync document"], ring::hmac::HMAC_SHA256).map_err(|_| "HKDF failed".to_string())?;
        Ok(Sealer { key: LessSafeKey::new(unbound), mac: ring::hmac::Key::from(okm) })
    }

    /// The document's authentication tag (hex): an HMAC of its canonical form (`canonical`).
    pub fn mac(&self, canonical: &[u8]) -> String {
        hex(ring::hmac::sign(&self.mac, canonical).as_ref())
    }

    /// Whether `tag` (hex) authenticates `canonical` (compared in constant time by ring).
    pub fn verify(&self, canonical: &[u8], tag: &str) -> bool {
        unhex(tag).is_some_and(|t| ring::hmac::verify(&self.mac, canonical, &t).is_ok())
    }

    /// `plain` sealed, bound to `place`.
    pub fn seal(&self, plain: &str, place: &str) -> Result<String, String> {
        let nonce = random::<NONCE_LEN>()?;
        let mut buf = plain.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(place.as_bytes()), &mut buf)
            .map_err(|_| "encryption failed".to_string())?;
        let mut out = String::with_capacity(PREFIX.len() + 2 * (NONCE_LEN + buf.len()));
        out.push_str(PREFIX);
        out.push_str(&hex(&nonce));
        out.push_str(&hex(&buf));
        Ok(out)
    }

    /// The plain text of a sealed value at `place`; `None` when it does not open (another key,
    /// another place, or changed).
    pub fn open(&self, sealed: &str, place: &str) -> Option<String> {
        let bytes = unhex(sealed.strip_prefix(PREFIX)?)?;
        if bytes.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return None;
        }
        let (nonce, rest) = bytes.split_at(NONCE_LEN);
        let mut buf = rest.to_vec();
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let plain = self.key.open_in_place(nonce, Aad::from(place.as_bytes()), &mut buf).ok()?;
        String::from_utf8(plain.to_vec()).ok()
    }

    /// The value kept at `check` to tell a wrong passphrase at once.
    pub fn check_value(&self) -> Result<String, String> {
        self.seal(CHECK_TEXT, "check")
    }

    pub fn opens_check(&self, check: &str) -> bool {
        self.open(check, "check").as_deref() == Some(CHECK_TEXT)
    }
}

pub fn is_sealed(v: &str) -> bool {
    v.starts_with(PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_the_key_at_their_place_and_unchanged() {
        let salt = random::<16>().unwrap();
        let s = Sealer::new(b"correct horse", &salt, 1000).unwrap();
        let v = s.seal("sk-ant-api03-secret", "profiles/w/endpoints/a/api_key").unwrap();
        assert!(is_sealed(&v) && !v.contains("secret"));
        assert_eq!(s.open(&v, "profiles/w/endpoints/a/api_key").as_deref(), Some("sk-ant-api03-secret"));
        assert_eq!(s.open(&v, "profiles/w/endpoints/b/api_key"), None, "moved to another endpoint");
        let mut flipped = v.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'0' { b'1' } else { b'0' };
        assert_eq!(s.open(std::str::from_utf8(&flipped).unwrap(), "profiles/w/endpoints/a/api_key"), None);
        let wrong = Sealer::new(b"wrong", &salt, 1000).unwrap();
        assert!(!wrong.opens_check(&s.check_value().unwrap()) && s.opens_check(&s.check_value().unwrap()));
        assert_ne!(s.seal("x", "p").unwrap(), s.seal("x", "p").unwrap(), "a fresh nonce each time");
        let tag = s.mac(b"document");
        assert!(s.verify(b"document", &tag) && !s.verify(b"documenT", &tag) && !wrong.verify(b"document", &tag));
    }
}

//! Secrets: the center's token and the runner tokens it issues. A runner token is the
//! HMAC-SHA-256, keyed by the center's token, of the run id and 32 random bytes drawn
//! at registration: the store keeps the random bytes and the token's SHA-256 only, so
//! reading the database is not enough to report to a run, yet a re-sent registration
//! gets the same token back. Comparisons take constant time.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The center's own token (`--token`), and the key of the runner tokens.
#[derive(Clone)]
pub struct CenterToken {
    secret: Vec<u8>,
    hash: [u8; 32],
}

impl std::fmt::Debug for CenterToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CenterToken(..)")
    }
}

impl CenterToken {
    pub fn new(token: &str) -> CenterToken {
        CenterToken {
            secret: token.as_bytes().to_vec(),
            hash: Sha256::digest(token.as_bytes()).into(),
        }
    }

    /// Whether `given` is this token (in constant time).
    pub fn matches(&self, given: &str) -> bool {
        let given: [u8; 32] = Sha256::digest(given.as_bytes()).into();
        bool::from(self.hash.ct_eq(&given))
    }

    /// The runner token of run `id` drawn from `nonce`.
    pub fn runner_token(&self, id: &str, nonce: &str) -> String {
        // Any key length is valid for HMAC, so this cannot fail.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.secret) else {
            return String::new();
        };
        mac.update(b"kpress runner token\0");
        mac.update(id.as_bytes());
        mac.update(b"\0");
        mac.update(nonce.as_bytes());
        hex(&mac.finalize().into_bytes())
    }
}

/// `n` random bytes, hex (a runner token's nonce, a generated run id).
pub fn random_hex(n: usize) -> Result<String, getrandom::Error> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes)?;
    Ok(hex(&bytes))
}

/// SHA-256, hex: how runner tokens and registrations are stored.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// Whether two hex digests are equal (in constant time).
pub fn same_digest(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_center_token_matches_itself_only() {
        let t = CenterToken::new("s3cret");
        assert!(t.matches("s3cret"));
        assert!(!t.matches("s3cre"));
        assert!(!t.matches(""));
        assert_eq!(format!("{t:?}"), "CenterToken(..)");
    }

    #[test]
    fn runner_tokens_depend_on_the_key_the_run_and_the_nonce() {
        let (a, b) = (CenterToken::new("one"), CenterToken::new("two"));
        let n = random_hex(32).unwrap_or_else(|e| panic!("{e}"));
        let token = a.runner_token("run1", &n);
        assert_eq!(token.len(), 64);
        assert_eq!(token, a.runner_token("run1", &n));
        assert_ne!(token, b.runner_token("run1", &n));
        assert_ne!(token, a.runner_token("run2", &n));
        assert_ne!(
            token,
            a.runner_token("run1", &random_hex(32).unwrap_or_default())
        );
    }

    #[test]
    fn digests_are_hex_sha256() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(same_digest("ab", "ab"));
        assert!(!same_digest("ab", "ac"));
        assert!(!same_digest("ab", "abc"));
    }
}

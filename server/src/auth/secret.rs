//! Passwords and PINs, hashed with argon2id (the crate's default parameters).

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::RngCore;

/// Shortest secret accepted: a 6-digit PIN.
pub const MIN_SECRET_CHARS: usize = 6;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("a password or PIN needs at least {MIN_SECRET_CHARS} characters")]
    TooShort,
    #[error("could not hash the secret: {0}")]
    Hash(String),
}

pub fn hash(secret: &str) -> Result<String, SecretError> {
    if secret.chars().count() < MIN_SECRET_CHARS {
        return Err(SecretError::TooShort);
    }
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| SecretError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| SecretError::Hash(e.to_string()))
}

/// False for a wrong secret and for a stored hash that does not parse.
pub fn verify(secret: &str, stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|parsed| Argon2::default().verify_password(secret.as_bytes(), &parsed).is_ok())
}

/// A hash to verify against when the account does not exist, so that an
/// unknown name costs the same time as a wrong secret.
pub fn decoy() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash("decoy-secret-never-matches").unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ() {
        let a = hash("123456").unwrap();
        let b = hash("123456").unwrap();
        assert_ne!(a, b, "salted");
        assert!(a.starts_with("$argon2id$"));
        assert!(verify("123456", &a));
        assert!(!verify("123457", &a));
        assert!(!verify("123456", "not a hash"));
        assert!(matches!(hash("12345"), Err(SecretError::TooShort)));
    }
}

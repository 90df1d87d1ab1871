//! Password hashes as RabbitMQ stores them: base64 of a 4-byte salt
//! followed by H(salt ‖ password), with H named by `hashing_algorithm`.
//! New hashes are SHA-256, RabbitMQ's default; SHA-512 and MD5 (RabbitMQ
//! before 3.6, and any user without an algorithm) are accepted on import.

use base64::Engine;
use sha2::Digest;

// Serialisable: a cluster replicates users with their hashes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) enum Hashing {
    Sha256,
    Sha512,
    Md5,
}

impl Hashing {
    pub(crate) fn parse(name: &str) -> Result<Hashing, String> {
        match name {
            "rabbit_password_hashing_sha256" => Ok(Hashing::Sha256),
            "rabbit_password_hashing_sha512" => Ok(Hashing::Sha512),
            "rabbit_password_hashing_md5" => Ok(Hashing::Md5),
            other => Err(format!("unknown password hashing algorithm '{other}'")),
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Hashing::Sha256 => "rabbit_password_hashing_sha256",
            Hashing::Sha512 => "rabbit_password_hashing_sha512",
            Hashing::Md5 => "rabbit_password_hashing_md5",
        }
    }

    fn digest(self, salt: &[u8], password: &[u8]) -> Vec<u8> {
        match self {
            Hashing::Sha256 => sha2::Sha256::new()
                .chain_update(salt)
                .chain_update(password)
                .finalize()
                .to_vec(),
            Hashing::Sha512 => sha2::Sha512::new()
                .chain_update(salt)
                .chain_update(password)
                .finalize()
                .to_vec(),
            Hashing::Md5 => md5::Md5::new()
                .chain_update(salt)
                .chain_update(password)
                .finalize()
                .to_vec(),
        }
    }
}

/// A stored hash; empty for a user without a password.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct PasswordHash {
    pub hashing: Hashing,
    /// salt ‖ digest, as decoded from `password_hash`.
    bytes: Vec<u8>,
}

impl PasswordHash {
    /// A fresh SHA-256 hash with a random salt.
    pub(crate) fn new(password: &str) -> PasswordHash {
        let mut salt = [0u8; 4];
        // The OS random source does not fail on Linux once booted; a fixed
        // salt would still be a valid (if weaker) hash.
        let _ = getrandom::fill(&mut salt);
        Self::salted(Hashing::Sha256, salt, password)
    }

    pub(crate) fn salted(hashing: Hashing, salt: [u8; 4], password: &str) -> PasswordHash {
        let mut bytes = salt.to_vec();
        bytes.extend(hashing.digest(&salt, password.as_bytes()));
        PasswordHash { hashing, bytes }
    }

    pub(crate) fn none() -> PasswordHash {
        PasswordHash {
            hashing: Hashing::Sha256,
            bytes: Vec::new(),
        }
    }

    /// From a definitions file's `password_hash` and `hashing_algorithm`.
    pub(crate) fn parse(b64: &str, hashing: Hashing) -> Result<PasswordHash, String> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| format!("password_hash '{b64}' is not base64"))?;
        if !bytes.is_empty() && bytes.len() <= 4 {
            return Err(format!("password_hash '{b64}' is too short"));
        }
        Ok(PasswordHash { hashing, bytes })
    }

    pub(crate) fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.bytes)
    }

    /// Does `password` match? A user without a hash never matches.
    pub(crate) fn verify(&self, password: &str) -> bool {
        if self.bytes.len() <= 4 {
            return false;
        }
        let (salt, digest) = self.bytes.split_at(4);
        let computed = self.hashing.digest(salt, password.as_bytes());
        // Compare every byte, so the time taken says nothing about where
        // the first difference is.
        computed.len() == digest.len()
            && computed
                .iter()
                .zip(digest)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_exported_by_rabbitmq_verifies() {
        // guest/guest from RabbitMQ 3.10.8's export_definitions.
        let h = PasswordHash::parse(
            "1IZkh4i8BjNcO8l8ZSzjaTYVyMGnLJFJjykYzx2vr7MM/A0g",
            Hashing::Sha256,
        )
        .unwrap();
        assert!(h.verify("guest"));
        assert!(!h.verify("guesT"));
    }

    #[test]
    fn new_hashes_round_trip_through_base64_for_every_algorithm() {
        for hashing in [Hashing::Sha256, Hashing::Sha512, Hashing::Md5] {
            let h = PasswordHash::salted(hashing, [1, 2, 3, 4], "pw");
            let back = PasswordHash::parse(&h.to_base64(), hashing).unwrap();
            assert!(back.verify("pw"), "{hashing:?}");
            assert!(!back.verify("pw2"), "{hashing:?}");
        }
        let fresh = PasswordHash::new("s3cret");
        assert_eq!(fresh.hashing, Hashing::Sha256);
        assert!(fresh.verify("s3cret"));
    }

    #[test]
    fn no_hash_matches_nothing_and_bad_input_is_refused() {
        assert!(!PasswordHash::none().verify(""));
        assert!(!PasswordHash::parse("", Hashing::Sha256).unwrap().verify(""));
        assert!(PasswordHash::parse("not base64!", Hashing::Sha256).is_err());
        assert!(PasswordHash::parse("AAAA", Hashing::Sha256).is_err());
        assert!(Hashing::parse("rabbit_password_hashing_sha1").is_err());
    }
}

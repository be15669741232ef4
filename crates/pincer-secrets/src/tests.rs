use std::fs;
use std::os::unix::fs::PermissionsExt as _;

use super::*;

fn vault(dir: &Path) -> Vault {
    Vault::new(&dir.join("secrets"), None).unwrap()
}

#[test]
fn set_get_list_remove_round_trip_and_the_file_holds_no_plaintext() {
    let t = tempfile::tempdir().unwrap();
    let v = vault(t.path());
    assert!(v.names().unwrap().is_empty());
    assert_eq!(v.get("openai").unwrap(), None);
    assert!(!v.set("openai", "sk-live-plaintext-value").unwrap());
    assert!(v.set("openai", "sk-live-second-value").unwrap());
    v.set("telegram.bot", "123:abc").unwrap();
    assert_eq!(v.names().unwrap(), ["openai", "telegram.bot"]);
    assert_eq!(
        v.get("openai").unwrap().as_deref().map(String::as_str),
        Some("sk-live-second-value")
    );
    let raw = fs::read(v.store_path()).unwrap();
    for needle in ["sk-live", "openai", "telegram", "123:abc"] {
        assert!(
            !raw.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "{needle} is in the sealed file"
        );
    }
    for p in [v.store_path(), v.key_path()] {
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    assert!(v.remove("openai").unwrap());
    assert!(!v.remove("openai").unwrap());
    assert_eq!(v.names().unwrap(), ["telegram.bot"]);
}

#[test]
fn bad_names_sizes_and_empty_values_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let v = vault(t.path());
    for name in ["", "-x", "a b", "a/b", "secret:x", &"a".repeat(65)] {
        assert!(
            matches!(v.set(name, "v"), Err(SecretsError::BadName(_))),
            "{name}"
        );
    }
    assert!(matches!(v.set("x", ""), Err(SecretsError::Empty(_))));
    let big = "x".repeat(MAX_VALUE_BYTES + 1);
    assert!(matches!(
        v.set("x", &big),
        Err(SecretsError::TooLarge { .. })
    ));
    assert!(!v.exists(), "nothing was stored");
}

#[test]
fn a_flipped_byte_anywhere_is_detected() {
    let t = tempfile::tempdir().unwrap();
    let v = vault(t.path());
    v.set("k", "value").unwrap();
    let good = fs::read(v.store_path()).unwrap();
    for i in 0..good.len() {
        let mut bad = good.clone();
        bad[i] ^= 0x01;
        fs::write(v.store_path(), &bad).unwrap();
        let err = v.get("k").unwrap_err();
        assert!(
            matches!(
                err,
                SecretsError::Corrupt { .. } | SecretsError::WrongKey { .. }
            ),
            "byte {i}: {err}"
        );
    }
    fs::write(v.store_path(), &good[..good.len() - 1]).unwrap();
    assert!(matches!(v.get("k"), Err(SecretsError::Corrupt { .. })));
}

#[test]
fn the_wrong_key_is_named_not_mistaken_for_damage() {
    let t = tempfile::tempdir().unwrap();
    let v = vault(t.path());
    v.set("k", "value").unwrap();
    let other = Vault::new(&t.path().join("secrets"), Some(&"ab".repeat(32))).unwrap();
    let err = other.get("k").unwrap_err();
    assert!(matches!(err, SecretsError::WrongKey { .. }), "{err}");
    fs::remove_file(v.key_path()).unwrap();
    assert!(matches!(v.get("k"), Err(SecretsError::NoKey { .. })));
    assert!(
        matches!(v.set("k2", "v"), Err(SecretsError::NoKey { .. })),
        "a lost key is never silently replaced"
    );
    assert!(matches!(
        Vault::new(t.path(), Some("nothex")),
        Err(SecretsError::BadKey { .. })
    ));
}

#[test]
fn an_environment_key_works_without_a_key_file() {
    let t = tempfile::tempdir().unwrap();
    let key = "0f".repeat(32);
    let v = Vault::new(&t.path().join("secrets"), Some(&key)).unwrap();
    assert_eq!(v.key_source(), KeySource::Environment);
    v.set("k", "value").unwrap();
    assert!(!v.key_path().exists());
    assert_eq!(
        v.get("k").unwrap().as_deref().map(String::as_str),
        Some("value")
    );
    // Rotation needs the new key from the operator.
    assert!(matches!(
        v.rotate_key(None),
        Err(SecretsError::NewKeyNeeded)
    ));
    let new = "a1".repeat(32);
    let r = v.rotate_key(Some(&new)).unwrap();
    assert_eq!(r.secrets, 1);
    assert!(matches!(v.get("k"), Err(SecretsError::WrongKey { .. })));
    let v2 = Vault::new(&t.path().join("secrets"), Some(&new)).unwrap();
    assert_eq!(
        v2.get("k").unwrap().as_deref().map(String::as_str),
        Some("value")
    );
}

#[test]
fn rotating_a_file_key_reseals_and_an_interrupted_rotation_is_finished() {
    let t = tempfile::tempdir().unwrap();
    let v = vault(t.path());
    v.set("a", "1").unwrap();
    v.set("b", "2").unwrap();
    let old_key = fs::read(v.key_path()).unwrap();
    let old_store = fs::read(v.store_path()).unwrap();
    let r = v.rotate_key(None).unwrap();
    assert_eq!(r.secrets, 2);
    assert_ne!(r.old_key, r.new_key);
    assert_ne!(fs::read(v.key_path()).unwrap(), old_key);
    assert_eq!(
        v.get("b").unwrap().as_deref().map(String::as_str),
        Some("2")
    );

    // A crash after the store was re-sealed but before the key was moved: the next open
    // finds the new key waiting and finishes.
    let new_key = fs::read(v.key_path()).unwrap();
    let new_store = fs::read(v.store_path()).unwrap();
    fs::write(v.key_path(), &old_key).unwrap();
    fs::write(v.dir.join("secrets.key.new"), &new_key).unwrap();
    assert_eq!(
        v.get("a").unwrap().as_deref().map(String::as_str),
        Some("1")
    );
    assert_eq!(fs::read(v.key_path()).unwrap(), new_key);
    assert!(!v.dir.join("secrets.key.new").exists());

    // A crash before the store was re-sealed: the old key still holds; the stray is removed.
    fs::write(v.key_path(), &old_key).unwrap();
    fs::write(v.store_path(), &old_store).unwrap();
    fs::write(v.dir.join("secrets.key.new"), &new_key).unwrap();
    assert_eq!(
        v.get("a").unwrap().as_deref().map(String::as_str),
        Some("1")
    );
    assert_eq!(fs::read(v.key_path()).unwrap(), old_key);
    assert!(!v.dir.join("secrets.key.new").exists());
    let _ = new_store;
}

#[test]
fn references_name_valid_secrets_only() {
    assert_eq!(reference("secret:openai"), Some("openai"));
    assert_eq!(reference("secret:"), None);
    assert_eq!(reference("secret:a b"), None);
    assert_eq!(reference("OPENAI_API_KEY"), None);
}

#[test]
fn concurrent_writers_lose_nothing() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("secrets");
    vault(t.path()).set("seed", "0").unwrap();
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let dir = dir.clone();
            std::thread::spawn(move || {
                let v = Vault::new(&dir, None).unwrap();
                for j in 0..10 {
                    v.set(&format!("k{i}-{j}"), "v").unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(vault(t.path()).names().unwrap().len(), 81);
}

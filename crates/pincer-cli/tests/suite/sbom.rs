//! Issue 23, part 6: the SBOM. `packaging/sbom.sh` writes the CycloneDX 1.5 document of the
//! `pincer` binary from Cargo.lock; it must be valid CycloneDX (checked with the CycloneDX
//! project's own Python library against the 1.5 schema), list exactly crates Cargo.lock pins,
//! include what the binary is built from and leave out dev-only crates. Under `CI=true` a
//! missing cargo-cyclonedx or validator fails the test.

use std::collections::BTreeSet;
use std::path::Path;

use super::common::*;

#[test]
fn the_sbom_is_valid_cyclonedx_and_matches_cargo_lock() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = std::env::var("PINCER_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let have_tool = std::process::Command::new("cargo")
        .args(["cyclonedx", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    let have_lib = std::process::Command::new(&python)
        .args(["-c", "import cyclonedx.validation.json"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !(have_tool && have_lib) {
        assert!(
            !in_ci(),
            "cargo-cyclonedx and cyclonedx-python-lib are required under CI (.ci/run installs them)"
        );
        eprintln!("SKIP (cargo-cyclonedx or cyclonedx-python-lib missing; not CI)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pincer.cdx.json");
    let run = std::process::Command::new(root.join("packaging/sbom.sh"))
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );

    // Valid CycloneDX 1.5.
    let check = std::process::Command::new(&python)
        .args([
            "-c",
            "import sys\n\
             from cyclonedx.schema import SchemaVersion\n\
             from cyclonedx.validation.json import JsonStrictValidator\n\
             err = JsonStrictValidator(SchemaVersion.V1_5).validate_str(open(sys.argv[1]).read())\n\
             sys.exit(str(err) if err else 0)",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );

    let bom: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(bom["bomFormat"], "CycloneDX");
    assert_eq!(bom["metadata"]["component"]["name"], "pincer");
    // Every component is a crate Cargo.lock pins, at that version.
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).unwrap();
    let pinned: BTreeSet<(String, String)> = lock
        .split("[[package]]")
        .filter_map(|p| {
            let field = |k: &str| {
                p.lines()
                    .find_map(|l| l.strip_prefix(&format!("{k} = \"")))
                    .and_then(|v| v.strip_suffix('"'))
                    .map(str::to_owned)
            };
            Some((field("name")?, field("version")?))
        })
        .collect();
    let listed: BTreeSet<(String, String)> = bom["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                c["version"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for c in &listed {
        assert!(pinned.contains(c), "{c:?} is not in Cargo.lock");
    }
    let names: BTreeSet<&str> = listed.iter().map(|(n, _)| n.as_str()).collect();
    for built_in in [
        "ring",
        "rustls",
        "rusqlite",
        "tokio",
        "tokio-postgres",
        "flate2",
        "pincer-secrets",
        "pincer-audit",
    ] {
        assert!(names.contains(built_in), "{built_in} missing from the SBOM");
    }
    for dev_only in ["divan", "pincer-testkit", "pincer-bench"] {
        assert!(!names.contains(dev_only), "{dev_only} is not in the binary");
    }
    // Licences are carried for the crates that declare them.
    assert!(
        bom["components"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["licenses"].is_array())
            .count()
            > listed.len() * 9 / 10
    );
}

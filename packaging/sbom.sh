#!/usr/bin/env bash
# The CycloneDX 1.5 SBOM of the `pincer` binary, from Cargo.lock: every crate compiled into it
# with every feature on (what CI builds), without build-only and dev-only crates, with
# versions, licences and package URLs. Written to target/sbom/pincer.cdx.json (or $1).
# Needs cargo-cyclonedx (`cargo install --locked cargo-cyclonedx@0.5.9`; .ci/run installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-target/sbom/pincer.cdx.json}"
if ! command -v cargo-cyclonedx >/dev/null; then
    echo "sbom: cargo-cyclonedx is not installed: cargo install --locked cargo-cyclonedx@0.5.9" >&2
    exit 2
fi
# One SBOM per binary target of the workspace is written next to each crate's Cargo.toml; keep
# the server's and remove the others (test and bench helpers).
cargo cyclonedx --manifest-path crates/pincer-cli/Cargo.toml --format json --spec-version 1.5 \
    --all-features --no-build-deps --describe binaries -q
mkdir -p "$(dirname "$out")"
mv crates/pincer-cli/pincer_bin.cdx.json "$out"
find crates -maxdepth 2 -name '*_bin.cdx.json' -delete
echo "sbom: $out ($(grep -o '"bom-ref"' "$out" | wc -l) components)"

#!/usr/bin/env bash
# Builds the wasm core component from source, reproducibly.
#
#   scripts/build-guests.sh            rebuild and install guest/artifacts_core.wasm
#   scripts/build-guests.sh --check    rebuild and fail if it differs from the committed file
#
# First choice: rustup's wasm32-unknown-unknown target. Fallback (a machine
# where `rustup target add` cannot download): Debian's rustc with its library
# sources and -Zbuild-std (see shared/wasm-toolchain.md).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mode=${1:-install}
target=wasm32-unknown-unknown
out_dir="$root/target/guest-build"
committed="$root/guest/artifacts_core.wasm"
mkdir -p "$out_dir"

# Paths that differ between machines must not reach the binary.
cargo_home=${CARGO_HOME:-$HOME/.cargo}
remap="--remap-path-prefix=$root=/src --remap-path-prefix=$cargo_home=/cargo"
export CARGO_TARGET_DIR="$out_dir/target"

build_rustup() {
    rustup target add "$target" >/dev/null 2>&1 || return 1
    echo "build-guests: rustc $(rustc --version | cut -d' ' -f2) with rustup's $target" >&2
    RUSTFLAGS="$remap" cargo build --locked -p artifacts-core --target "$target" --profile guest
}

build_debian() {
    echo "build-guests: rustup's $target unavailable; falling back to Debian's rustc with -Zbuild-std" >&2
    if [ ! -d /usr/lib/rustlib/src/rust/library ]; then
        apt-get update -qq && apt-get install -y -qq rustc-web rust-web-src >/dev/null
    fi
    local lld
    lld="$(rustc --print sysroot)/lib/rustlib/x86_64-unknown-linux-gnu/bin/rust-lld"
    RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 \
        CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER="$lld" \
        RUSTFLAGS="$remap" \
        cargo build --locked -p artifacts-core --target "$target" --profile guest \
        -Zbuild-std=std,panic_abort
}

build_rustup || build_debian
module="$CARGO_TARGET_DIR/$target/guest/artifacts_core.wasm"
cargo run --locked --quiet -p xtask -- componentize "$module" "$out_dir/artifacts_core.wasm"

case "$mode" in
    --check)
        if cmp -s "$out_dir/artifacts_core.wasm" "$committed"; then
            echo "build-guests: guest/artifacts_core.wasm matches its source" >&2
        else
            echo "build-guests: guest/artifacts_core.wasm differs from a rebuild of its source;" >&2
            echo "  run scripts/build-guests.sh and commit the result" >&2
            exit 1
        fi
        ;;
    install)
        cp "$out_dir/artifacts_core.wasm" "$committed"
        echo "build-guests: wrote guest/artifacts_core.wasm ($(wc -c <"$committed") bytes)" >&2
        ;;
    *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

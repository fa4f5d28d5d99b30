#!/usr/bin/env bash
# Builds the wasm core component from source, reproducibly.
#
#   scripts/build-guests.sh            rebuild and install guest/artifacts_core.wasm and tests/apps/*.wasm
#   scripts/build-guests.sh --check    rebuild and fail if any differs from the committed file
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
mkdir -p "$out_dir"

# Paths that differ between machines must not reach the binary.
cargo_home=${CARGO_HOME:-$HOME/.cargo}
remap="--remap-path-prefix=$root=/src --remap-path-prefix=$cargo_home=/cargo"
export CARGO_TARGET_DIR="$out_dir/target"
# The core hashes with BLAKE3's wasm SIMD code: compile it with simd128 on, or
# every v128 intrinsic becomes an out-of-line call.
core_flags="-C target-feature=+simd128"

build_rustup() {
    rustup target add "$target" >/dev/null 2>&1 || return 1
    echo "build-guests: rustc $(rustc --version | cut -d' ' -f2) with rustup's $target" >&2
    RUSTFLAGS="$remap $core_flags" cargo build --locked -p artifacts-core --target "$target" --profile guest
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
        RUSTFLAGS="$remap $core_flags" \
        cargo build --locked -p artifacts-core --target "$target" --profile guest \
        -Zbuild-std=std,panic_abort
}

build_rustup || build_debian
module="$CARGO_TARGET_DIR/$target/guest/artifacts_core.wasm"
cargo run --locked --quiet -p xtask -- componentize "$module" "$out_dir/artifacts_core.wasm"

# The test apps (tests/apps/): wasm32-wasip2 commands, already components.
# The installer embeds the built plugin, so the plugin goes first.
apps_target="$out_dir/apps-target"
build_app() {
    local app=$1
    if ! rustup target add wasm32-wasip2 >/dev/null 2>&1; then
        echo "build-guests: rustup's wasm32-wasip2 is unavailable: cannot rebuild the test apps here" >&2
        return 1
    fi
    CARGO_TARGET_DIR="$apps_target" RUSTFLAGS="$remap" \
        cargo build --locked --release --manifest-path "$root/tests/apps/Cargo.toml" \
        -p "$app" --target wasm32-wasip2
    cp "$apps_target/wasm32-wasip2/release/$app.wasm" "$out_dir/$app.wasm"
}
built=(artifacts_core.wasm:guest/artifacts_core.wasm)
build_app plugin
# The installer includes tests/apps/plugin.wasm: build it from the fresh plugin.
plugin_committed="$root/tests/apps/plugin.wasm"
if [ "$mode" = install ]; then cp "$out_dir/plugin.wasm" "$plugin_committed"; fi
build_app installer
build_app hostile
build_app spender
build_app librarian
build_app streamer
# Written only against the upstream wasi:blobstore WIT (wit-blobstore/).
build_app blobber
built+=(blobber.wasm:tests/apps/blobber.wasm)
# The launcher includes both versions of the launchee: build them first.
build_bin() {
    local package=$1 bin=$2
    CARGO_TARGET_DIR="$apps_target" RUSTFLAGS="$remap" \
        cargo build --locked --release --manifest-path "$root/tests/apps/Cargo.toml" \
        -p "$package" --bin "$bin" --target wasm32-wasip2
    cp "$apps_target/wasm32-wasip2/release/$bin.wasm" "$out_dir/$bin.wasm"
    if [ "$mode" = install ]; then cp "$out_dir/$bin.wasm" "$root/tests/apps/$bin.wasm"; fi
}
build_bin launchee launchee-v1
build_bin launchee launchee-v2
build_app launcher
built+=(launchee-v1.wasm:tests/apps/launchee-v1.wasm launchee-v2.wasm:tests/apps/launchee-v2.wasm launcher.wasm:tests/apps/launcher.wasm)
built+=(plugin.wasm:tests/apps/plugin.wasm installer.wasm:tests/apps/installer.wasm hostile.wasm:tests/apps/hostile.wasm spender.wasm:tests/apps/spender.wasm librarian.wasm:tests/apps/librarian.wasm streamer.wasm:tests/apps/streamer.wasm)

status=0
for pair in "${built[@]}"; do
    file=${pair%%:*} dest=${pair#*:}
    case "$mode" in
        --check)
            if cmp -s "$out_dir/$file" "$root/$dest"; then
                echo "build-guests: $dest matches its source" >&2
            else
                echo "build-guests: $dest differs from a rebuild of its source;" >&2
                echo "  run scripts/build-guests.sh and commit the result" >&2
                status=1
            fi
            ;;
        install)
            cp "$out_dir/$file" "$root/$dest"
            echo "build-guests: wrote $dest ($(wc -c <"$root/$dest") bytes)" >&2
            ;;
        *) echo "usage: $0 [--check]" >&2; exit 2 ;;
    esac
done
exit $status

#!/usr/bin/env bash
# libcontainer 0.7.0 does not compile for 32-bit targets (tty.rs compares a u32 filesystem
# magic with a u64 constant). This makes a patched copy of the crate in DIR (default
# target/cross-libs/patched/libcontainer-0.7.0) and prints its path; armv7 builds use it
# through a [patch] given on the command line:
#
#   p=$(cross/patch-libcontainer.sh)
#   cross build --release --target armv7-unknown-linux-musleabihf \
#       --config "patch.crates-io.libcontainer.path=\"$p\""
#
# (Cargo records the patched source in Cargo.lock: `git checkout Cargo.lock` afterwards.)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-target/cross-libs/patched/libcontainer-0.7.0}
if [ ! -f "$dir/.skiff-patched" ]; then
  cargo fetch --quiet
  src=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/libcontainer-0.7.0 | head -1)
  rm -rf "$dir"
  mkdir -p "$(dirname "$dir")"
  cp -r "$src" "$dir"
  patch --quiet -d "$dir" -p1 < cross/libcontainer-0.7.0-32bit.patch
  touch "$dir/.skiff-patched"
fi
echo "$dir"

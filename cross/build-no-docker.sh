#!/usr/bin/env bash
# Builds static release binaries of skiff-agent, skiff-coordinator and skiff for ARM
# boards without Docker, checks each under qemu-user, runs the api crate's tests under
# qemu for aarch64, and prints sizes.
#
#   cross/build-no-docker.sh [TARGET...]     (default: aarch64 and armv7 musl)
#
# SKIFF_CROSS_PROFILE picks the cargo profile (default release; edge for the smallest
# binaries). CI checks with dev: the same targets, linker, static libraries and qemu
# runs, built in a fraction of the time (thin LTO at opt-level 3 of the whole graph,
# twice, on two cores, took 33 minutes of a CI run after a dependency change).
#
# Needs scripts/deps (Debian cross gcc, musl-dev:armhf, qemu-user-static, rust-src).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
target_dir=${CARGO_TARGET_DIR:-$root/target}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(aarch64-unknown-linux-musl armv7-unknown-linux-musleabihf)
bins=(-p skiff-agent -p skiff-coordinator -p skiff)
profile=${SKIFF_CROSS_PROFILE:-release}
case "$profile" in dev) out=debug ;; *) out=$profile ;; esac

# armv7 musl has no prebuilt rust-std here: std is built from source. Its unwinder is
# gcc's libgcc_eh.a under the name the unwind crate links (libunwind.a).
armv7_libs="$target_dir/cross-libs/armv7"
mkdir -p "$armv7_libs"
cp -f "$(arm-linux-gnueabihf-gcc -print-file-name=libgcc_eh.a)" "$armv7_libs/libunwind.a"
specs=/usr/lib/arm-linux-musleabihf/musl-gcc.specs
# libgcc supplies compiler helpers C code needs on armv7 (mimalloc: __popcountsi2).
export CARGO_TARGET_ARMV7_UNKNOWN_LINUX_MUSLEABIHF_RUSTFLAGS="-C link-self-contained=no -C link-arg=-specs=$specs -C link-arg=-static -L $armv7_libs -C link-arg=-lgcc"

# libcontainer 0.7.0 does not compile for 32-bit targets: armv7 builds against a patched
# copy (cross/patch-libcontainer.sh) given as a [patch] on the command line. Cargo records
# the patched source in Cargo.lock; the build puts the repository's lock file back.
build() {
  local t=$1; shift
  # skiff-runtime links libseccomp (libcontainer's seccomp): a static musl build per target.
  local seccomp="$target_dir/cross-libs/$t/libseccomp"
  cross/libseccomp.sh "$t" "$seccomp" 2>&1 | grep -v "modifier ignored\|WARNING\|^W:" || true
  test -f "$seccomp/lib/libseccomp.a" || { echo "libseccomp for $t failed" >&2; exit 1; }
  export LIBSECCOMP_LINK_TYPE=static LIBSECCOMP_LIB_PATH="$seccomp/lib"
  case "$t" in
    armv7-unknown-linux-musleabihf)
      local patched saved="$target_dir/cross-libs/Cargo.lock.repo"
      patched=$(cross/patch-libcontainer.sh "$target_dir/cross-libs/patched/libcontainer-0.7.0")
      cp -f Cargo.lock "$saved"
      local rc=0
      RUSTC_BOOTSTRAP=1 cargo --config cross/debian.toml \
        --config "patch.crates-io.libcontainer.path=\"$patched\"" "$@" --target "$t" \
        -Zbuild-std=std,panic_abort || rc=$?
      cp -f "$saved" Cargo.lock
      return $rc ;;
    *) cargo --config cross/debian.toml "$@" --target "$t" ;;
  esac
}

runner() {
  case "$1" in
    aarch64-*) echo qemu-aarch64-static ;;
    armv7-*) echo qemu-arm-static ;;
    *) echo "" ;;
  esac
}

for t in "${targets[@]}"; do
  echo "== $t: $profile build"
  build "$t" build --profile "$profile" "${bins[@]}"
  for b in skiff-agent skiff-coordinator skiff; do
    f="$target_dir/$t/$out/$b"
    if file "$f" 2>/dev/null | grep -q dynamically; then
      echo "$f is not static" >&2
      exit 1
    fi
    v=$($(runner "$t") "$f" --version)
    printf '%-40s %-22s %8d bytes\n' "$t/$b" "$v" "$(stat -c %s "$f")"
  done
done

for t in "${targets[@]}"; do
  case "$t" in
    aarch64-*)
      echo "== $t: skiff-api tests under qemu"
      build "$t" test -p skiff-api ;;
  esac
done

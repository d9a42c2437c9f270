#!/usr/bin/env bash
# Builds a static libseccomp for one musl target, which skiff-runtime (libcontainer's seccomp
# support) links. Used two ways:
#
#   cross/libseccomp.sh TARGET PREFIX            # without Docker: Debian's source and cross gcc
#   ./libseccomp.sh TARGET                       # as cross's pre-build script, inside its image
#
# Then build with LIBSECCOMP_LINK_TYPE=static LIBSECCOMP_LIB_PATH=PREFIX/lib.
set -euo pipefail
target=$1
prefix=${2:-/usr/local/libseccomp}
version=2.5.4
if [ -f "$prefix/lib/libseccomp.a" ]; then
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ -n "${CROSS_DEB_ARCH:-}" ] || [ "$#" -eq 1 ]; then
  # Inside a cross image: its musl toolchain, and the upstream release.
  apt-get update -qq && apt-get install -y -qq --no-install-recommends gperf curl ca-certificates make >/dev/null
  case "$target" in
    aarch64-unknown-linux-musl) cc=aarch64-linux-musl-gcc host=aarch64-linux-musl ;;
    armv7-unknown-linux-musleabihf) cc=armv7-linux-musleabihf-gcc host=arm-linux-musleabihf ;;
    x86_64-unknown-linux-musl) cc=x86_64-linux-musl-gcc host=x86_64-linux-musl ;;
    *) echo "no libseccomp recipe for $target" >&2; exit 1 ;;
  esac
  curl -fsSL "https://github.com/seccomp/libseccomp/releases/download/v$version/libseccomp-$version.tar.gz" | tar -xz -C "$work"
  src="$work/libseccomp-$version"
else
  # Debian: the cross gcc with musl's specs, and Debian's source package (deb-src).
  case "$target" in
    aarch64-unknown-linux-musl) gnu=aarch64-linux-gnu musl=aarch64-linux-musl ;;
    armv7-unknown-linux-musleabihf) gnu=arm-linux-gnueabihf musl=arm-linux-musleabihf ;;
    *) echo "no libseccomp recipe for $target" >&2; exit 1 ;;
  esac
  # musl's specs drop the cross toolchain's include path; the kernel headers libseccomp
  # needs (linux/, asm/) come from it, and nothing else may.
  mkdir -p "$work/kernel-headers"
  for d in linux asm asm-generic; do
    ln -s "/usr/$gnu/include/$d" "$work/kernel-headers/$d"
  done
  cc="$gnu-gcc -specs=/usr/lib/$musl/musl-gcc.specs -isystem $work/kernel-headers"
  host=$gnu
  cache=$(dirname "$prefix")/src
  mkdir -p "$cache"
  if ! ls "$cache"/libseccomp_*.orig.tar.gz >/dev/null 2>&1; then
    (cd "$cache" && apt-get source --download-only -qq libseccomp >/dev/null)
  fi
  tar -xzf "$(ls "$cache"/libseccomp_*.orig.tar.gz | head -1)" -C "$work"
  src=$(ls -d "$work"/libseccomp-*)
fi

cd "$src"
# No fortify: its checked functions are glibc's, not musl's.
CC="$cc" CFLAGS="-O2 -fPIC -U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=0" \
  ./configure --quiet --host="$host" --prefix="$prefix" --enable-static --disable-shared >/dev/null
make -s -j"$(nproc)" >/dev/null
make -s install >/dev/null
echo "libseccomp $version for $target in $prefix"

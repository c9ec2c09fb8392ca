#!/usr/bin/env bash
# Build a local stand-in for python:3.11-slim where no registry can be reached:
# a minimal Debian bookworm root filesystem with its Python 3.11 (the same
# Debian and Python minor as python:3.11-slim), imported as a Docker image.
# The root filesystem tarball is cached, so later runs only import it, and an
# image that already exists is left alone.
set -euo pipefail

usage() {
    cat <<USAGE
Usage: $0 [IMAGE]

Make the Docker image IMAGE (default: voxstack-base:bookworm-py3.11) from a
Debian bookworm debootstrap, for machines that cannot pull python:3.11-slim.
Build with it: make images BASE_IMAGE=IMAGE.

Environment:
  DEBIAN_MIRROR   Debian mirror (default http://deb.debian.org/debian)
  CACHE_DIR       where the root filesystem tarball is kept
                  (default ~/.cache/voxstack)
USAGE
}
case "${1:-}" in -h|--help) usage; exit 0 ;; esac

image="${1:-voxstack-base:bookworm-py3.11}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
cache="${CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/voxstack}"
# Bump when the package list changes, so a stale tarball is not reused.
tarball="$cache/rootfs-bookworm-py3.11-v1.tar"

if docker image inspect "$image" >/dev/null 2>&1; then
    echo "base image $image already exists"
    exit 0
fi

if [ ! -s "$tarball" ]; then
    command -v debootstrap >/dev/null || { echo "debootstrap is not installed (apt-get install debootstrap)" >&2; exit 1; }
    [ "$(id -u)" = 0 ] || { echo "debootstrap needs root" >&2; exit 1; }
    mkdir -p "$cache"
    rootfs="$(mktemp -d)"
    trap 'rm -rf "$rootfs"' EXIT
    echo "debootstrap bookworm into $rootfs (about a minute)"
    # libgomp1: llama.cpp's OpenMP runtime, so the llm image needs no apt at build time.
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates,libgomp1 \
        bookworm "$rootfs" "$mirror" >"$cache/debootstrap.log" 2>&1 \
        || { tail -20 "$cache/debootstrap.log" >&2; exit 1; }
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -cf "$tarball.partial" .
    mv "$tarball.partial" "$tarball"
fi

echo "importing $tarball as $image"
docker import \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["python3"]' \
    "$tarball" "$image" >/dev/null
echo "base image $image ready"

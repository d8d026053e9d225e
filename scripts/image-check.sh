#!/usr/bin/env bash
# Runs deploy/Dockerfile's build command exactly (the line starting with
# "RUN CGO_ENABLED="), outside Docker, in a copy of the sources as the
# Dockerfile's COPY makes it, then checks that the binary is the one the
# image needs: built with cgo (PKCS#11), linking only glibc's libraries
# (all that distroless/base-debian12 has), and runnable.
set -euo pipefail
cd "$(dirname "$0")/.."
line=$(grep -m1 '^RUN CGO_ENABLED=' deploy/Dockerfile) || { echo "deploy/Dockerfile has no 'RUN CGO_ENABLED=' build line" >&2; exit 1; }
cmd=${line#RUN }
work=$(mktemp -d /tmp/signet-image-check-XXXXXX)
trap 'rm -rf "$work"' EXIT
# The build context: what git tracks (a .dockerignore-free COPY . . of a clean checkout).
git ls-files -z | xargs -0 cp --parents -t "$work" 2>/dev/null || cp -r . "$work"
echo "image-check: $cmd" >&2
(cd "$work" && sh -c "$cmd")
bin="$work/out/signet-server"
go version -m "$bin" | grep -q 'CGO_ENABLED=1' || { echo "image-check: $bin was not built with cgo (PKCS#11 needs it)" >&2; exit 1; }
# glibc's own libraries only: distroless/base-debian12 carries glibc and no other.
extra=$(readelf -d "$bin" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | grep -vE '^(libc\.so\.6|libm\.so\.6|libdl\.so\.2|libpthread\.so\.0|libresolv\.so\.2|ld-linux-x86-64\.so\.2|ld-linux-aarch64\.so\.1)$' || true)
[ -z "$extra" ] || { echo "image-check: the binary needs libraries the image lacks: $extra" >&2; exit 1; }
"$bin" --help >/dev/null || { echo "image-check: the built binary does not run" >&2; exit 1; }
echo "image-check: ok ($(du -h "$bin" | cut -f1), $(readelf -d "$bin" | grep -c NEEDED) shared libraries, all glibc's)" >&2

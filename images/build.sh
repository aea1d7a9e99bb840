#!/bin/sh
# build.sh: make images (see README.md here). Builds the base from Debian
# with mkbase.sh, then the images of Dockerfile, all tagged
# bookworm-<VERSION> and labelled zoe.images.recipe=<hash of the recipe>: an
# image whose label matches is not built again, so a second run does
# nothing. SUDO is the command that makes mkbase.sh root ("" when root).
set -eu
cd "$(dirname "$0")"
step() { echo "== $(date +%T) $*"; }

tag=bookworm-$(cat VERSION)
base=zoe/debian:$tag
images="python dask-scheduler dask-worker notebook-dask"
label=zoe.images.recipe

# The base's recipe is mkbase.sh alone (not the mirror: any mirror of the
# suite gives the same packages); the images' is the base's and every file
# they are built from.
base_sum=$(sha256sum mkbase.sh | cut -c1-16)
sum=$( { echo "$base_sum"; cat VERSION Dockerfile; find scripts -type f | LC_ALL=C sort | xargs cat; } | sha256sum | cut -c1-16)

recipe() { docker image inspect -f "{{index .Config.Labels \"$label\"}}" "$1" 2>/dev/null || true; }
id_of() { docker image inspect -f '{{.Id}}' "$1" 2>/dev/null || true; }
# drop OLD TAG: removes OLD, the image TAG named before it was built again,
# so that rebuilds do not pile up untagged images (Docker refuses while a
# container or another tag uses it; then it stays).
drop() { if [ -n "$1" ] && [ "$1" != "$(id_of "$2")" ]; then docker rmi "$1" >/dev/null 2>&1 || true; fi; }

# One make images at a time: two would both debootstrap.
lock=${XDG_CACHE_HOME:-$HOME/.cache}/zoe-images.lock
mkdir -p "$(dirname "$lock")" && exec 9>"$lock"
flock -n 9 || { echo "images: waiting for another make images"; flock 9; }

stale=
for i in $images; do [ "$(recipe "zoe/$i:$tag")" = "$sum" ] || stale="$stale $i"; done
if [ -z "$stale" ]; then echo "images: up to date (recipe $sum):$(for i in $images; do printf ' zoe/%s:%s' "$i" "$tag"; done)"; exit 0; fi

if [ "$(recipe "$base")" = "$base_sum" ]; then
  echo "images: base $base up to date (recipe $base_sum)"
else
  step "images: debootstrap of Debian bookworm (minbase), imported as $base (about a minute)"
  old=$(id_of "$base")
  # env: sudo would drop the mirrors' variables.
  ${SUDO:-} env DEBIAN_MIRROR="${DEBIAN_MIRROR:-}" DEBIAN_SECURITY_MIRROR="${DEBIAN_SECURITY_MIRROR:-}" \
    ./mkbase.sh "$base" "$label=$base_sum"
  drop "$old" "$base"
fi

# Docker's legacy builder when BuildKit's (buildx) is not installed.
docker buildx version >/dev/null 2>&1 || export DOCKER_BUILDKIT=0
# The build's output (apt's, mostly) is shown only when it fails.
log=$(mktemp) && trap 'rm -f "$log"' EXIT
for i in $stale; do
  step "images: building zoe/$i:$tag"
  old=$(id_of "zoe/$i:$tag")
  docker build --target "$i" --build-arg "BASE=$base" --label "$label=$sum" -t "zoe/$i:$tag" . >"$log" 2>&1 ||
    { tail -n 40 "$log"; echo "images: building zoe/$i:$tag failed"; exit 1; }
  drop "$old" "zoe/$i:$tag"
done
step "images: built$(for i in $images; do printf ' zoe/%s:%s' "$i" "$tag"; done) (recipe $sum)"
docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E "^zoe/(debian|python|dask-scheduler|dask-worker|notebook-dask):$tag " || true

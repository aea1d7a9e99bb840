#!/bin/sh
# mkbase.sh IMAGE LABEL: the base of the analytics images, a Debian bookworm
# minbase root filesystem made by debootstrap, imported into the local
# engine as IMAGE with LABEL (zoe.images.recipe=<hash of this file>). Run as
# root (debootstrap makes device nodes and root-owned files); build.sh does.
# DEBIAN_MIRROR and DEBIAN_SECURITY_MIRROR name the mirrors (kept in the
# image's apt sources, so that the Dockerfiles' apt-get uses them too).
set -eu
image=$1 label=$2
suite=bookworm
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
security=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}

root=$(mktemp -d "${TMPDIR:-/var/tmp}/zoe-rootfs.XXXXXX")
log=$(mktemp)
trap 'rm -rf "$root" "$log"' EXIT
trap 'exit 1' HUP INT TERM

# Its output (a few lines per package) is shown only when it fails.
debootstrap --variant=minbase --components=main "$suite" "$root" "$mirror" >"$log" 2>&1 ||
  { tail -n 40 "$log"; echo "mkbase.sh: debootstrap failed"; exit 1; }

# The suite's point release, updates and security fixes: the suite is
# pinned, the versions are bookworm's of the day of the build.
rm -f "$root/etc/apt/sources.list"
cat > "$root/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: $mirror
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES

# What every image's apt-get does without being told: no recommended or
# suggested packages (the Dockerfiles name what they need), no downloaded
# packages or package caches kept in the image's layers (180 MB of the
# notebook's), no documentation, manual pages or translations (copyright
# files stay).
cat > "$root/etc/apt/apt.conf.d/90zoe" <<'APT'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
APT::Keep-Downloaded-Packages "false";
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
APT
cat > "$root/etc/dpkg/dpkg.cfg.d/90zoe" <<'DPKG'
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
DPKG

# The same for what debootstrap installed (40 MB); and nothing of the
# build's own day stays but the packages: no package lists, downloaded
# packages or logs.
find "$root/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/*
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb "$root"/var/log/*
: > "$root/etc/machine-id"

tar -C "$root" --numeric-owner -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change "LABEL $label" \
  --change 'CMD ["/bin/bash"]' \
  - "$image" >/dev/null

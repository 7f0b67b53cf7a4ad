#!/usr/bin/env bash
# Builds a minimal Debian 12 (bookworm) container image with dropbear as a `docker save` archive of two layers:
# the debootstrap minbase root, then a layer with dropbear (installed by apt in a chroot over an overlay of the
# first, so the layer holds only what the install changed; overlayfs whiteouts become Docker's `.wh.` files).
# Its Cmd runs dropbear in the foreground on port 22 (host keys made at the first connection); root logs in
# with the key pair the container driver writes to /root/.ssh/authorized_keys. Not used by CI: slow (minutes,
# downloads about 40 MB), needs root, debootstrap and the network.
# Usage: ops/images/build-debian.sh OUT.tar   (glance: container_format=docker, disk_format=raw)
#   MIRROR (default http://deb.debian.org/debian), SUITE (default bookworm)
set -euo pipefail
out=${1:?usage: $0 OUT.tar}
mirror=${MIRROR:-http://deb.debian.org/debian}
suite=${SUITE:-bookworm}
[ "$(id -u)" = 0 ] || { echo "$0 must run as root (debootstrap, chroot, overlay mount)" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "no debootstrap: apt-get install debootstrap" >&2; exit 1; }

work=$(mktemp -d /tmp/novum-image.XXXXXX)
cleanup() {
  for m in "$work/merged/proc" "$work/merged/dev" "$work/merged"; do
    mountpoint -q "$m" && umount -l "$m"
  done
  rm -rf "$work"
}
trap cleanup EXIT
base=$work/base top=$work/top
mkdir -p "$base" "$top" "$work/ovl-work" "$work/merged"

# Layer 1: the minimal base system.
debootstrap --variant=minbase "$suite" "$base" "$mirror" >"$work/debootstrap.log" 2>&1 ||
  { tail -20 "$work/debootstrap.log" >&2; exit 1; }
slim() { # dir: caches, logs and device nodes (the runtime gives /dev) out of a layer
  rm -rf "$1"/var/cache/apt/*.bin "$1"/var/cache/apt/archives/*.deb "$1"/var/lib/apt/lists/* \
    "$1"/var/log/*.log "$1"/var/log/apt/* "$1"/dev/* "$1"/tmp/* "$1"/var/tmp/*
}
slim "$base"
: >"$base/etc/machine-id"

# Layer 2: dropbear, installed over the base through an overlay.
mount -t overlay novum-image -o "lowerdir=$base,upperdir=$top,workdir=$work/ovl-work" "$work/merged"
mount -t proc proc "$work/merged/proc"
mount --rbind /dev "$work/merged/dev"
cp /etc/resolv.conf "$work/merged/etc/resolv.conf"
chroot "$work/merged" sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -qq --no-install-recommends dropbear-bin >/dev/null && apt-get clean"
mkdir -p -m 700 "$work/merged/root/.ssh" "$work/merged/etc/dropbear"
echo 'Novum Debian image' >"$work/merged/etc/novum-release"
umount -l "$work/merged/dev"
umount "$work/merged/proc"
umount "$work/merged"
rm -f "$top/etc/resolv.conf"
slim "$top"
rmdir "$top/proc" "$top/dev" 2>/dev/null || true
# overlayfs whiteouts (0/0 character devices) and opaque directories in Docker's form.
find "$top" -type c | while read -r f; do
  if [ "$(stat -c %t:%T "$f")" = 0:0 ]; then rm "$f"; : >"$(dirname "$f")/.wh.$(basename "$f")"; fi
done
# (getfattr exits 1 when some files lack the attribute: only its output counts.)
{ getfattr -R -P --absolute-names -n trusted.overlay.opaque -e text "$top" 2>/dev/null || true; } |
  sed -n 's/^# file: //p' | while read -r d; do
    setfattr -x trusted.overlay.opaque "$d"
    : >"$d/.wh..wh..opq"
  done

arc=$work/archive
mkdir -p "$arc"
layers=() diffs=()
for dir in "$base" "$top"; do
  tar --sort=name --numeric-owner --format=pax -cf "$work/layer.tar" -C "$dir" $(ls -A "$dir")
  digest=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
  mkdir -p "$arc/$digest"
  mv "$work/layer.tar" "$arc/$digest/layer.tar"
  layers+=("\"$digest/layer.tar\"") diffs+=("\"sha256:$digest\"")
done
join() { local IFS=,; echo "$*"; }
config="{\"architecture\":\"amd64\",\"os\":\"linux\",\"created\":\"$(date -u +%Y-%m-%dT%H:%M:%SZ)\",\
\"config\":{\"Env\":[\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\"],\
\"Cmd\":[\"/usr/sbin/dropbear\",\"-F\",\"-E\",\"-R\",\"-p\",\"22\"],\"WorkingDir\":\"/root\"},\
\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[$(join "${diffs[@]}")]}}"
config_digest=$(printf '%s' "$config" | sha256sum | cut -d' ' -f1)
printf '%s' "$config" >"$arc/$config_digest.json"
printf '[{"Config":"%s.json","RepoTags":["novum/debian:12"],"Layers":[%s]}]' \
  "$config_digest" "$(join "${layers[@]}")" >"$arc/manifest.json"
tar --sort=name --numeric-owner --owner=0 --group=0 -cf "$work/image.tar" -C "$arc" $(ls -A "$arc")
mv "$work/image.tar" "$out"
echo "$out sha256:$(sha256sum "$out" | cut -d' ' -f1) layers: ${#layers[@]}"

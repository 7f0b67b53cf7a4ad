#!/usr/bin/env bash
# Builds a small container image from Debian's busybox-static as a `docker save` archive (manifest.json,
# image config, layer tars), byte for byte the same on every run: sorted entries, fixed owners and times.
# Two layers: the busybox root, then a layer that deletes a file and makes /srv opaque (overlay whiteouts).
# Its Cmd prints "hello from <hostname>" and keeps running; SIGTERM ends it at once.
# With --oci, the same image as an OCI image layout instead (oci-layout, index.json, blobs/sha256/...: the
# manifest, the config, the base layer gzip-compressed and the second one a plain tar).
# Usage: ops/images/build-busybox.sh [--oci] OUT.tar   (glance: container_format=docker, disk_format=raw)
set -euo pipefail
oci=0
if [ "${1:-}" = --oci ]; then oci=1; shift; fi
out=${1:?usage: $0 [--oci] OUT.tar}
busybox=${BUSYBOX:-/bin/busybox}
[ -x "$busybox" ] || { echo "no $busybox: apt-get install busybox-static" >&2; exit 1; }

work=$(mktemp -d /tmp/novum-image.XXXXXX)
trap 'rm -rf "$work"' EXIT
det_tar() { # dir out: a tar that depends only on the content
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=gnu -cf "$2" -C "$1" $(ls -A "$1")
}

base=$work/base
mkdir -p "$base"/{bin,dev,etc,proc,sys,tmp,root,var/tmp,srv/old}
cp "$busybox" "$base/bin/busybox"
for applet in $("$busybox" --list); do
  [ "$applet" = busybox ] || ln -s busybox "$base/bin/$applet"
done
chmod 1777 "$base/tmp" "$base/var/tmp"
chmod 700 "$base/root"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$base/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$base/etc/group"
echo 'removed by the second layer' >"$base/etc/novum-removed"
echo 'hidden by the opaque /srv of the second layer' >"$base/srv/old/file"

top=$work/top
mkdir -p "$top"/{etc,srv}
echo 'Novum busybox image' >"$top/etc/novum-release"
: >"$top/etc/.wh.novum-removed"
: >"$top/srv/.wh..wh..opq"
echo 'from the second layer' >"$top/srv/new"

find "$base" "$top" -exec touch -h -d @0 {} +
arc=$work/archive
mkdir -p "$arc"
join() { local IFS=,; echo "$*"; }
cmd="trap 'echo bye; exit 0' TERM; echo hello from \$(hostname); sleep 2147483647 & wait"
cmd_json=$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$cmd")
config_of() { # diff_ids...: the image config
  echo -n "{\"architecture\":\"amd64\",\"os\":\"linux\",\"created\":\"1970-01-01T00:00:00Z\",\
\"config\":{\"Env\":[\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\"],\
\"Cmd\":[\"/bin/sh\",\"-c\",$cmd_json],\"WorkingDir\":\"/root\"},\
\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[$(join "$@")]}}"
}
if [ "$oci" = 1 ]; then
  mkdir -p "$arc/blobs/sha256"
  blob() { # file: moved to blobs/sha256/<digest>; prints the digest
    local digest
    digest=$(sha256sum "$1" | cut -d' ' -f1)
    mv "$1" "$arc/blobs/sha256/$digest"
    echo "$digest"
  }
  descs=() diffs=() n=0
  for dir in "$base" "$top"; do
    det_tar "$dir" "$work/layer.tar"
    diffs+=("\"sha256:$(sha256sum "$work/layer.tar" | cut -d' ' -f1)\"")
    media=application/vnd.oci.image.layer.v1.tar
    if [ $n = 0 ]; then gzip -n -9 "$work/layer.tar" && mv "$work/layer.tar.gz" "$work/layer.tar" && media+=+gzip; fi
    size=$(stat -c %s "$work/layer.tar")
    descs+=("{\"mediaType\":\"$media\",\"digest\":\"sha256:$(blob "$work/layer.tar")\",\"size\":$size}")
    n=$((n + 1))
  done
  config_of "${diffs[@]}" >"$work/config.json"
  config_size=$(stat -c %s "$work/config.json")
  config_digest=$(blob "$work/config.json")
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[%s]}' \
    "$config_digest" "$config_size" "$(join "${descs[@]}")" >"$work/manifest.json"
  manifest_size=$(stat -c %s "$work/manifest.json")
  manifest_digest=$(blob "$work/manifest.json")
  printf '{"imageLayoutVersion":"1.0.0"}' >"$arc/oci-layout"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"amd64","os":"linux"},"annotations":{"org.opencontainers.image.ref.name":"novum/busybox:latest"}}]}' \
    "$manifest_digest" "$manifest_size" >"$arc/index.json"
else
  layers=() diffs=()
  for dir in "$base" "$top"; do
    det_tar "$dir" "$work/layer.tar"
    digest=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
    mkdir -p "$arc/$digest"
    mv "$work/layer.tar" "$arc/$digest/layer.tar"
    layers+=("\"$digest/layer.tar\"") diffs+=("\"sha256:$digest\"")
  done
  config=$(config_of "${diffs[@]}")
  config_digest=$(printf '%s' "$config" | sha256sum | cut -d' ' -f1)
  printf '%s' "$config" >"$arc/$config_digest.json"
  printf '[{"Config":"%s.json","RepoTags":["novum/busybox:latest"],"Layers":[%s]}]' \
    "$config_digest" "$(join "${layers[@]}")" >"$arc/manifest.json"
fi
find "$arc" -exec touch -h -d @0 {} +
det_tar "$arc" "$work/image.tar"
mv "$work/image.tar" "$out"
echo "$out sha256:$(sha256sum "$out" | cut -d' ' -f1)"

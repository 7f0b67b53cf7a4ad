#!/usr/bin/env bash
# Builds a Debian 12 (bookworm) cloud image for the kvm driver as qcow2, from Debian packages only: debootstrap
# minbase plus systemd, cloud-init (ConfigDrive datasource first), openssh-server, ifupdown (cloud-init's
# renderer for network_data.json on Debian 12), cloud-guest-utils (growpart) and Debian's cloud kernel with a
# small initramfs (virtio, ext4). The disk: an MBR with a FAT partition that SYSLINUX boots (the kernel and
# initramfs, console on the serial port) and an ext4 root (/dev/vda2, the last partition, so that cloud-init
# grows it to the flavour's disk), made with `mkfs.ext4 -d` from the chroot: no loop devices.
# cloud-init sets the host name, writes the key pair to root's authorized_keys (root logs in with the key, as
# does Debian's default user `debian`), applies the network and runs user data; its output goes to the serial
# console. SSH host keys are made at the first boot. Build: about 3 minutes, 150 MB of qcow2 (downloads about
# 120 MB); first boot to cloud-init's end under TCG: about 2.5 minutes.
# Usage: ops/images/build-vm-debian.sh OUT.qcow2   (glance: disk_format=qcow2, container_format=bare)
#   MIRROR (default http://deb.debian.org/debian), SECURITY_MIRROR (default http://deb.debian.org/debian-security)
# Needs root, debootstrap, syslinux, syslinux-common, mtools, dosfstools, e2fsprogs, qemu-utils, python3.
set -euo pipefail
out=${1:?usage: $0 OUT.qcow2}
mirror=${MIRROR:-http://deb.debian.org/debian}
security=${SECURITY_MIRROR:-http://deb.debian.org/debian-security}
suite=bookworm
[ "$(id -u)" = 0 ] || { echo "$0 must run as root (debootstrap, chroot)" >&2; exit 1; }
for tool in debootstrap syslinux mcopy mkfs.vfat mkfs.ext4 qemu-img python3; do
  command -v "$tool" >/dev/null ||
    { echo "no $tool (apt-get install debootstrap syslinux mtools dosfstools e2fsprogs qemu-utils)" >&2; exit 1; }
done
mbr=/usr/lib/syslinux/mbr/mbr.bin
[ -r "$mbr" ] || { echo "no $mbr: apt-get install syslinux-common" >&2; exit 1; }

work=$(mktemp -d /tmp/novum-vm-debian.XXXXXX)
root=$work/root
cleanup() {
  for m in "$root/proc" "$root/sys" "$root/dev"; do
    mountpoint -q "$m" && umount -l "$m"
  done
  rm -rf "$work"
}
trap cleanup EXIT

debootstrap --variant=minbase --include=systemd-sysv,udev,ca-certificates "$suite" "$root" "$mirror" \
  >"$work/debootstrap.log" 2>&1 || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
cat >"$root/etc/apt/sources.list" <<EOF
deb $mirror $suite main
deb $mirror $suite-updates main
deb $security $suite-security main
EOF
# The initramfs holds only what mounts the root disk: a guest of this image always has virtio disks.
mkdir -p "$root/etc/initramfs-tools/conf.d"
echo 'MODULES=list' >"$root/etc/initramfs-tools/conf.d/novum.conf"
printf '%s\n' virtio_pci virtio_blk virtio_net ext4 crc32c_generic >>"$root/etc/initramfs-tools/modules"
# No documentation, man pages or translations.
mkdir -p "$root/etc/dpkg/dpkg.cfg.d"
printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
  'path-exclude /usr/share/man/*' 'path-exclude /usr/share/locale/*' 'path-include /usr/share/locale/locale.alias' \
  'path-exclude /usr/share/info/*' >"$root/etc/dpkg/dpkg.cfg.d/novum-slim"
mount -t proc proc "$root/proc"
mount -t sysfs sysfs "$root/sys"
mount --rbind /dev "$root/dev"
cp /etc/resolv.conf "$root/etc/resolv.conf"
chroot "$root" sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
  --no-install-recommends linux-image-cloud-amd64 initramfs-tools cloud-init openssh-server ifupdown \
  cloud-guest-utils fdisk e2fsprogs iproute2 isc-dhcp-client netbase >/dev/null && apt-get clean' \
  >"$work/install.log" 2>&1 || { tail -30 "$work/install.log" >&2; exit 1; }
umount -l "$root/dev"
umount "$root/sys"
umount "$root/proc"

# cloud-init: the config drive (then nothing: no slow probing of other sources); root logs in with the key
# pair as well as Debian's default user `debian`; no locale to generate (no locales package); no DSA host key.
cat >"$root/etc/cloud/cloud.cfg.d/90_novum.cfg" <<'EOF'
datasource_list: [ ConfigDrive, None ]
disable_root: false
locale: false
ssh_genkeytypes: [ rsa, ecdsa, ed25519 ]
EOF
cat >"$root/etc/fstab" <<'EOF'
/dev/vda2 / ext4 rw,errors=remount-ro 0 1
EOF
cat >"$root/etc/network/interfaces" <<'EOF'
auto lo
iface lo inet loopback

source /etc/network/interfaces.d/*
EOF
echo 'Novum Debian cloud image' >"$root/etc/novum-release"
echo debian >"$root/etc/hostname"
# Made anew at each first boot: the machine id, the SSH host keys (cloud-init), the resolver.
: >"$root/etc/machine-id"
rm -f "$root"/etc/ssh/ssh_host_*key* "$root/etc/resolv.conf" "$root/var/lib/dbus/machine-id"
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/log/*.log "$root"/var/log/apt/* \
  "$root"/tmp/* "$root"/var/tmp/*

# The boot partition: FAT with SYSLINUX, the kernel and the initramfs.
kernel=$(ls -1 "$root"/boot/vmlinuz-* | head -1)
initrd=$(ls -1 "$root"/boot/initrd.img-* | head -1)
cat >"$work/syslinux.cfg" <<'EOF'
SERIAL 0 115200
DEFAULT debian
PROMPT 0
TIMEOUT 0
LABEL debian
  KERNEL vmlinuz
  INITRD initrd.img
  APPEND root=/dev/vda2 rw console=ttyS0,115200 net.ifnames=0 nomodeset
EOF
boot_mb=$(( ($(stat -c %s "$kernel") + $(stat -c %s "$initrd")) / 1048576 + 8 ))
mkfs.vfat -C -n NOVUMBOOT -i 4e6f7675 "$work/boot.img" $(( boot_mb * 1024 )) >/dev/null
syslinux --install "$work/boot.img"
export MTOOLS_SKIP_CHECK=1
mcopy -i "$work/boot.img" "$kernel" ::vmlinuz
mcopy -i "$work/boot.img" "$initrd" ::initrd.img
mcopy -i "$work/boot.img" "$work/syslinux.cfg" ::syslinux.cfg
rm -f "$root"/boot/vmlinuz-* "$root"/boot/initrd.img-* "$root"/vmlinuz* "$root"/initrd.img*

# The root partition: ext4 filled from the chroot, with room to spare (growpart grows it further at boot).
root_mb=$(( $(du -sm "$root" | cut -f1) * 5 / 4 + 256 ))
mkfs.ext4 -q -L novum-root -d "$root" "$work/root.img" "${root_mb}M" >/dev/null

disk=$work/disk.raw
truncate -s "$(( 1 + boot_mb + root_mb ))M" "$disk"
dd if="$mbr" of="$disk" conv=notrunc status=none
# Partition 1: bootable FAT32 (LBA) from 1 MiB; partition 2: Linux, right after it to the end of the disk.
python3 - "$disk" "$boot_mb" "$root_mb" <<'EOF'
import struct, sys
path, boot_mb, root_mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def entry(active, kind, start, sectors):
    return struct.pack('<B3sB3sII', 0x80 if active else 0, b'\xfe\xff\xff', kind, b'\xfe\xff\xff', start, sectors)
boot_start, boot_sectors = 2048, boot_mb * 2048
root_start, root_sectors = boot_start + boot_sectors, root_mb * 2048
with open(path, 'r+b') as disk:
    disk.seek(440); disk.write(struct.pack('<I', 0x4e6f7675) + b'\0\0')
    disk.seek(446); disk.write(entry(True, 0x0c, boot_start, boot_sectors) + entry(False, 0x83, root_start, root_sectors) + b'\0' * 32)
    disk.seek(510); disk.write(b'\x55\xaa')
EOF
dd if="$work/boot.img" of="$disk" bs=1M seek=1 conv=notrunc status=none
dd if="$work/root.img" of="$disk" bs=1M seek=$(( 1 + boot_mb )) conv=notrunc,sparse status=none
qemu-img convert -f raw -O qcow2 -c "$disk" "$work/out.qcow2"
mv "$work/out.qcow2" "$out"
echo "$out $(stat -c %s "$out") bytes, kernel ${kernel#*/vmlinuz-}"

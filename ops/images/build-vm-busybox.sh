#!/usr/bin/env bash
# Builds a small bootable virtual machine disk (qcow2) from Debian packages only: an MBR disk with one FAT
# partition that SYSLINUX boots (its banner on the serial port within a second of each boot), holding a
# Debian kernel (the package linux-image-amd64 depends on, downloaded with apt-get and unpacked into a cache,
# never installed: the host's own boot setup is left alone) and a busybox-static initramfs. The guest's init loads the virtio
# modules, prints "NOVUM-GUEST-BOOTED" on the serial console, mounts the config drive (ISO 9660, label
# config-2), sets the host name from openstack/latest/meta_data.json and prints "novum-guest hostname=<name>",
# runs user data that starts with "#!", answers the ACPI power button with a power-off (busybox acpid), and
# keeps a shell on the serial console. Built without mounts or loop devices.
# Usage: ops/images/build-vm-busybox.sh [--kernel BZIMAGE] OUT.qcow2   (glance: disk_format=qcow2, container_format=bare)
# --kernel boots a kernel with everything the guest needs built in, no modules (build-tiny-kernel.sh makes one:
# it boots in a fraction of the Debian kernel's time under TCG), with options that save ~0.4 s of its boot
# under TCG: PCI interrupts routed by the BIOS's $PIR table rather than ACPI's interrupt links (whose AML
# took ~0.2 s for each virtio device; ACPI stays, and the power button with it), no 100 ms check of the timer
# interrupt, no TSC watchdog. Without --kernel, Debian's kernel and its modules.
# Needs: busybox-static, syslinux, syslinux-common, mtools, dosfstools, cpio, qemu-utils (and apt's package lists).
# KERNEL=/path/to/vmlinuz-<release> (with /usr/lib/modules/<release>) uses another kernel; NOVUM_KERNEL_CACHE
# (default /var/cache/novum/kernel) is where the unpacked kernel package is kept.
set -euo pipefail
builtin_kernel=''
if [ "${1:-}" = --kernel ]; then builtin_kernel=${2:?usage: $0 [--kernel BZIMAGE] OUT.qcow2}; shift 2; fi
out=${1:?usage: $0 [--kernel BZIMAGE] OUT.qcow2}
busybox=${BUSYBOX:-/bin/busybox}
[ -x "$busybox" ] || { echo "no $busybox: apt-get install busybox-static" >&2; exit 1; }
if [ -n "$builtin_kernel" ]; then
  kernel=$builtin_kernel
  release="$(basename "$kernel") (drivers built in)"
  modules=''
elif [ -n "${KERNEL:-}" ]; then
  kernel=$KERNEL
  release=${kernel#*/vmlinuz-}
  modules=/usr/lib/modules/$release
else
  cache=${NOVUM_KERNEL_CACHE:-/var/cache/novum/kernel}
  package=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
  if [ -z "$package" ]; then
    apt-get update -qq
    package=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
  fi
  [ -n "$package" ] || { echo "apt knows no linux-image-amd64 kernel package" >&2; exit 1; }
  if [ ! -d "$cache/$package" ]; then
    fetch=$(mktemp -d /tmp/novum-kernel.XXXXXX)
    (cd "$fetch" && { apt-get download -qq -o APT::Sandbox::User=root "$package" || { apt-get update -qq && apt-get download -qq -o APT::Sandbox::User=root "$package"; }; })
    dpkg-deb -x "$fetch"/*.deb "$fetch/root"
    mkdir -p "$cache"
    rm -rf "$cache/$package.partial" && mv "$fetch/root" "$cache/$package.partial" && mv "$cache/$package.partial" "$cache/$package"
    rm -rf "$fetch"
  fi
  kernel=$(ls -1 "$cache/$package"/boot/vmlinuz-* | head -1)
  release=${kernel#*/vmlinuz-}
  modules=$cache/$package/lib/modules/$release
  [ -d "$modules" ] || modules=$cache/$package/usr/lib/modules/$release
fi
[ -n "$kernel" ] && [ -r "$kernel" ] || { echo "no kernel $kernel" >&2; exit 1; }
if [ -z "$builtin_kernel" ] && [ ! -d "$modules" ]; then echo "no $modules for $kernel" >&2; exit 1; fi
for tool in syslinux mcopy mkfs.vfat cpio qemu-img python3; do
  command -v "$tool" >/dev/null || { echo "no $tool (apt-get install syslinux mtools dosfstools cpio qemu-utils)" >&2; exit 1; }
done
mbr=/usr/lib/syslinux/mbr/mbr.bin
[ -r "$mbr" ] || { echo "no $mbr: apt-get install syslinux-common" >&2; exit 1; }

work=$(mktemp -d /tmp/novum-vm-image.XXXXXX)
trap 'rm -rf "$work"' EXIT

# The initramfs: busybox, the modules for virtio disks, ISO 9660 and the ACPI power button, and the init.
root=$work/initramfs
mkdir -p "$root"/{bin,dev,proc,sys,tmp,mnt/config,etc/acpi/PWRF,lib/modules,var/log,var/run}
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
done
# In load order (each after the modules it needs); none for a kernel with the drivers built in.
modules_in_order='virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk cdrom isofs button evdev failover net_failover virtio_net'
[ -z "$builtin_kernel" ] || modules_in_order=''
for module in $modules_in_order; do
  file=$(find "$modules/kernel" -name "$module.ko" | head -1)
  [ -n "$file" ] || { echo "no $module.ko in $modules" >&2; exit 1; }
  cp "$file" "$root/lib/modules/"
done
echo "$modules_in_order" >"$root/etc/modules-order"
printf '#!/bin/sh\necho "novum-guest: power button, powering off" >/dev/console\npoweroff -f\n' >"$root/etc/acpi/PWRF/00000080"
chmod +x "$root/etc/acpi/PWRF/00000080"
cat >"$root/init" <<'EOF'
#!/bin/sh
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for module in $(cat /etc/modules-order); do
  insmod /lib/modules/$module.ko 2>/dev/null
done
echo "NOVUM-GUEST-BOOTED"
acpid -c /etc/acpi 2>/dev/null
hostname novum-guest
config=''
for attempt in 1 2 3 4 5 6 7 8 9 10; do
  for disk in /dev/vd?; do
    [ -b "$disk" ] || continue
    if mount -t iso9660 -o ro "$disk" /mnt/config 2>/dev/null; then
      if [ -f /mnt/config/openstack/latest/meta_data.json ]; then config=$disk; break 2; fi
      umount /mnt/config
    fi
  done
  sleep 0.2
done
if [ -n "$config" ]; then
  meta=/mnt/config/openstack/latest/meta_data.json
  name=$(sed -n 's/.*"hostname": *"\([^"]*\)".*/\1/p' "$meta")
  uuid=$(sed -n 's/.*"uuid": *"\([^"]*\)".*/\1/p' "$meta")
  [ -n "$name" ] && hostname "$name"
  echo "novum-guest hostname=$(hostname) uuid=$uuid config-drive=$config"
  data=/mnt/config/openstack/latest/user_data
  if [ -f "$data" ] && [ "$(head -c 2 "$data")" = '#!' ]; then
    cp "$data" /tmp/user_data && chmod +x /tmp/user_data && /tmp/user_data
  fi
else
  echo "novum-guest: no config drive"
fi
echo "novum-guest ready"
while true; do setsid cttyhack sh -l; done
EOF
chmod +x "$root/init"
find "$root" -exec touch -h -d @0 {} +
(cd "$root" && find . | LC_ALL=C sort | cpio --quiet -o -H newc --reproducible | gzip -9n) >"$work/initrd.gz"

# The boot partition: FAT with SYSLINUX, the kernel and the initramfs; then an MBR disk around it.
cat >"$work/syslinux.cfg" <<'EOF'
SERIAL 0 115200
DEFAULT linux
PROMPT 0
TIMEOUT 0
LABEL linux
  KERNEL vmlinuz
  INITRD initrd.gz
  APPEND console=ttyS0,115200 quiet loglevel=3 panic=-1 nomodeset
EOF
[ -z "$builtin_kernel" ] || sed -i 's/ nomodeset$/ nomodeset acpi=noirq no_timer_check tsc=reliable/' "$work/syslinux.cfg"
size_kb=$(( ($(stat -c %s "$kernel") + $(stat -c %s "$work/initrd.gz")) / 1024 + 2048 ))
part_mb=$(( size_kb / 1024 + 2 ))
part=$work/part.img
truncate -s "${part_mb}M" "$part"
mkfs.vfat -n NOVUMBOOT -i 4e6f7675 "$part" >/dev/null
syslinux --install "$part"
export MTOOLS_SKIP_CHECK=1
mcopy -i "$part" "$kernel" ::vmlinuz
mcopy -i "$part" "$work/initrd.gz" ::initrd.gz
mcopy -i "$part" "$work/syslinux.cfg" ::syslinux.cfg
disk=$work/disk.raw
truncate -s "$(( part_mb + 1 ))M" "$disk"
dd if="$mbr" of="$disk" conv=notrunc status=none
# One bootable FAT32 (LBA) partition from sector 2048 to the end of the disk.
python3 - "$disk" "$part_mb" <<'EOF'
import struct, sys
path, part_mb = sys.argv[1], int(sys.argv[2])
start, sectors = 2048, part_mb * 2048
entry = struct.pack('<B3sB3sII', 0x80, b'\xfe\xff\xff', 0x0c, b'\xfe\xff\xff', start, sectors)
with open(path, 'r+b') as disk:
    disk.seek(440); disk.write(struct.pack('<I', 0x4e6f7675) + b'\0\0')
    disk.seek(446); disk.write(entry + b'\0' * 48)
    disk.seek(510); disk.write(b'\x55\xaa')
EOF
dd if="$part" of="$disk" bs=1M seek=1 conv=notrunc status=none
qemu-img convert -f raw -O qcow2 -c "$disk" "$work/out.qcow2"
mv "$work/out.qcow2" "$out"
echo "$out $(stat -c %s "$out") bytes, kernel $release"

#!/usr/bin/env bash
# Builds a tiny x86-64 Linux kernel (bzImage) for the test guest of build-vm-busybox.sh (`--kernel OUT`), from
# Debian's linux-source-6.1 only: tinyconfig plus what that guest uses, all built in (no modules): the 8250
# serial console, a gzip initramfs, virtio-pci disks and NICs, ISO 9660 with Joliet (the config drive is a
# virtio disk), ACPI with the power button as an input device (busybox acpid), devtmpfs, proc, sysfs, tmpfs,
# ELF and #! binaries, unix and inet (IPv4) sockets. Off, what olddefconfig would add that the guest does not
# use but pays for at each boot under TCG: IPv6, the i8042 keyboard and mouse, PPS/PTP, the ACPI processor
# driver and thermal zones, 256 legacy ptys (~0.1 s to register), the ACPI PM timer and its check, the Intel
# PMU drivers, the VGA arbiter, the initramfs decompressors other than gzip. It boots in a fraction of a
# stock Debian kernel's time under TCG (no module loading, almost nothing to probe).
# One change to the source: the __init memory freed before init runs is not poisoned. Under TCG every store
# into a page whose code QEMU has translated goes through its self-modifying-code path, so the memset of
# 0xcc over the ~540 KiB of init code took 0.15-0.25 s of each boot; freed unpoisoned it takes ~1 ms.
# Built once per version of this script and of linux-source-6.1 and kept in NOVUM_IMAGE_CACHE (default
# /var/cache/novum-images/tiny-kernel-<key>/, with its .config); later runs copy it from there. The build
# takes minutes: `nice -n 19 make -j${JOBS:-2}`.
# Usage: ops/images/build-tiny-kernel.sh OUT.bzImage
# Needs: apt-get install -y linux-source-6.1 build-essential bc flex bison libelf-dev
set -euo pipefail
out=${1:?usage: $0 OUT.bzImage}
source_package=linux-source-6.1
tarball=/usr/src/$source_package.tar.xz
[ -r "$tarball" ] || {
  echo "no $tarball: apt-get install -y $source_package build-essential bc flex bison libelf-dev" >&2
  exit 1
}
for tool in make gcc bc flex bison xz; do
  command -v "$tool" >/dev/null || { echo "no $tool: apt-get install -y build-essential bc flex bison libelf-dev" >&2; exit 1; }
done

# What the guest needs on top of tinyconfig (tinyconfig's EXPERT lets everything else stay off).
fragment='
CONFIG_64BIT=y
CONFIG_KERNEL_LZ4=y
CONFIG_PRINTK=y
CONFIG_BUG=y
CONFIG_MULTIUSER=y
CONFIG_FUTEX=y
CONFIG_EPOLL=y
CONFIG_SIGNALFD=y
CONFIG_TIMERFD=y
CONFIG_EVENTFD=y
CONFIG_SHMEM=y
CONFIG_FILE_LOCKING=y
CONFIG_POSIX_TIMERS=y
CONFIG_BINFMT_ELF=y
CONFIG_BINFMT_SCRIPT=y
CONFIG_BLK_DEV_INITRD=y
CONFIG_RD_GZIP=y
CONFIG_HZ_100=y
CONFIG_NO_HZ_IDLE=y
CONFIG_HYPERVISOR_GUEST=y
CONFIG_PARAVIRT=y
CONFIG_KVM_GUEST=y
CONFIG_PCI=y
CONFIG_ACPI=y
CONFIG_ACPI_BUTTON=y
CONFIG_INPUT=y
CONFIG_INPUT_EVDEV=y
CONFIG_TTY=y
CONFIG_SERIAL_8250=y
CONFIG_SERIAL_8250_CONSOLE=y
CONFIG_SERIAL_8250_NR_UARTS=1
CONFIG_SERIAL_8250_RUNTIME_UARTS=1
CONFIG_DEVTMPFS=y
CONFIG_PROC_FS=y
CONFIG_SYSFS=y
CONFIG_TMPFS=y
CONFIG_BLOCK=y
CONFIG_BLK_DEV=y
CONFIG_VIRTIO_MENU=y
CONFIG_VIRTIO_PCI=y
CONFIG_VIRTIO_BLK=y
CONFIG_NET=y
CONFIG_UNIX=y
CONFIG_INET=y
CONFIG_PACKET=y
CONFIG_NETDEVICES=y
CONFIG_NET_CORE=y
CONFIG_VIRTIO_NET=y
CONFIG_ISO9660_FS=y
CONFIG_JOLIET=y
# CONFIG_MODULES is not set
# CONFIG_RD_BZIP2 is not set
# CONFIG_RD_LZMA is not set
# CONFIG_RD_XZ is not set
# CONFIG_RD_LZO is not set
# CONFIG_RD_LZ4 is not set
# CONFIG_RD_ZSTD is not set
# CONFIG_IPV6 is not set
# CONFIG_INET_DIAG is not set
# CONFIG_ETHTOOL_NETLINK is not set
# CONFIG_INPUT_KEYBOARD is not set
# CONFIG_INPUT_MOUSE is not set
# CONFIG_SERIO is not set
# CONFIG_VT is not set
# CONFIG_HID is not set
# CONFIG_LEGACY_PTYS is not set
# CONFIG_SERIAL_8250_PCI is not set
# CONFIG_PPS is not set
# CONFIG_PTP_1588_CLOCK is not set
# CONFIG_ACPI_PROCESSOR is not set
# CONFIG_ACPI_TABLE_UPGRADE is not set
# CONFIG_THERMAL is not set
# CONFIG_X86_PM_TIMER is not set
# CONFIG_PERF_EVENTS_INTEL_UNCORE is not set
# CONFIG_PERF_EVENTS_INTEL_RAPL is not set
# CONFIG_PERF_EVENTS_INTEL_CSTATE is not set
# CONFIG_VGA_ARB is not set
# CONFIG_MQ_IOSCHED_KYBER is not set
# CONFIG_ACPI_AC is not set
# CONFIG_ACPI_BATTERY is not set
# CONFIG_ACPI_FAN is not set
# CONFIG_ACPI_THERMAL is not set
# CONFIG_SMP is not set
# CONFIG_RANDOMIZE_BASE is not set
# CONFIG_SPECULATION_MITIGATIONS is not set
# CONFIG_PAGE_TABLE_ISOLATION is not set
'

version=$(dpkg-query -W -f='${Version}' "$source_package" 2>/dev/null || stat -c %s.%Y "$tarball")
key=$({ cat "${BASH_SOURCE[0]}"; echo "$source_package $version"; } | sha256sum | cut -c1-16)
cache=${NOVUM_IMAGE_CACHE:-/var/cache/novum-images}
entry=$cache/tiny-kernel-$key
mkdir -p "$cache"
exec 9>"$cache/.tiny-kernel.lock"
flock 9 # one build at a time; a second caller waits for the first one's result
if [ ! -r "$entry/bzImage" ]; then
  work=$(mktemp -d "${TMPDIR:-/tmp}/novum-tiny-kernel.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  echo "building the tiny kernel from $source_package $version (minutes) in $work" >&2
  tar -xJf "$tarball" -C "$work"
  src=$work/$source_package
  # The __init memory freed unpoisoned (see above); the build stops if the line is not where it was.
  sed -i 's/^\([[:space:]]*\)POISON_FREE_INITMEM, what);$/\1-1, what); \/* novum: unpoisoned, see build-tiny-kernel.sh *\//' \
    "$src/arch/x86/mm/init.c"
  grep -q 'novum: unpoisoned' "$src/arch/x86/mm/init.c" || { echo "arch/x86/mm/init.c: the poisoning line moved" >&2; exit 1; }
  printf '%s' "$fragment" >"$work/guest.config"
  make -s -C "$src" ARCH=x86_64 tinyconfig >/dev/null
  (cd "$src" && ARCH=x86_64 scripts/kconfig/merge_config.sh -m .config "$work/guest.config" >/dev/null)
  make -s -C "$src" ARCH=x86_64 olddefconfig >/dev/null
  # Every option asked for must have survived olddefconfig (a missing dependency drops it silently), and
  # every one asked off must be off (absent or not set).
  missing=$(grep '=' "$work/guest.config" | LC_ALL=C sort | comm -23 - <(LC_ALL=C sort "$src/.config"))
  for symbol in $(sed -n 's/^# \(CONFIG_[A-Z0-9_]*\) is not set$/\1/p' "$work/guest.config"); do
    if grep -q "^$symbol=" "$src/.config"; then missing="$missing $symbol (on)"; fi
  done
  [ -z "$missing" ] || { echo "the kernel configuration did not take: $missing" >&2; exit 1; }
  nice -n 19 make -s -C "$src" ARCH=x86_64 -j"${JOBS:-2}" bzImage
  rm -rf "$entry.partial" && mkdir -p "$entry.partial"
  cp "$src/arch/x86/boot/bzImage" "$src/.config" "$entry.partial/"
  mv "$entry.partial" "$entry"
fi
cp "$entry/bzImage" "$out.tmp.$$" && mv "$out.tmp.$$" "$out"
echo "$out $(stat -c %s "$out") bytes, tiny kernel $key ($source_package $version)"

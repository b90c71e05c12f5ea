#!/usr/bin/env bash
# Boots a Debian kernel package under QEMU (TCG: nested KVM is not available on the CI machines) with an
# initramfs holding busybox, the guest check program, podid-probe, podid-agent and podid-imds-emulator, and prints
# the serial console. The guest mounts cgroup2 with nsdelegate, as systemd does on AKS nodes.
#
#   run_in_qemu.sh PACKAGE GUEST_CHECK_BIN PROBE_BIN AGENT_BIN EMULATOR_BIN
#
# The .deb and its unpacked tree are cached under $PODID_KERNEL_CACHE (default /var/cache/podid-kernels), so a
# rerun only rebuilds the initramfs (~1 s) and boots. Timings go to stderr as "podid-kernel: timing ...".
set -euo pipefail
pkg=$1 guest=$2 probe=$3 agent=$4 emulator=$5
cache=${PODID_KERNEL_CACHE:-/var/cache/podid-kernels}
boot_timeout=${PODID_KERNEL_BOOT_TIMEOUT:-240}
now_ms() { echo $(($(date +%s%N) / 1000000)); }
timing() { local d=$(($(now_ms) - $2)); printf 'podid-kernel: timing %s %d.%03ds\n' "$1" $((d / 1000)) $((d % 1000)) >&2; }
t0=$(now_ms)

for tool in qemu-system-x86_64 busybox cpio gzip apt-get dpkg ldd objcopy openssl; do
  command -v "$tool" >/dev/null || { echo "podid-kernel: $tool is missing (tools/install-deps.sh installs it)" >&2; exit 3; }
done

mkdir -p "$cache"
deb=$(ls "$cache/${pkg}_"*.deb 2>/dev/null | head -n1 || true)
if [[ -z $deb ]]; then
  # apt's sandbox user cannot write into a root-owned cache; download as root.
  (cd "$cache" && apt-get -q -o APT::Sandbox::User=root download "$pkg" >&2) ||
    { echo "podid-kernel: cannot download $pkg (is it still in the archive? apt-cache policy $pkg)" >&2; exit 3; }
  deb=$(ls "$cache/${pkg}_"*.deb | head -n1)
fi
tree=$cache/$pkg
if [[ ! -d $tree/boot ]]; then
  rm -rf "$tree.tmp" && dpkg -x "$deb" "$tree.tmp" && mv "$tree.tmp" "$tree"
fi
timing fetch "$t0"

vmlinuz=$(ls "$tree"/boot/vmlinuz-* | head -n1)
config=$(ls "$tree"/boot/config-* | head -n1)
kver=${vmlinuz##*/vmlinuz-}

t1=$(now_ms)
work=$(mktemp -d /tmp/podid-initramfs.XXXXXX)
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root"/{bin,sbin,proc,sys,dev,tmp,run,lib/modules,etc}
cp "$(command -v busybox)" "$root/bin/busybox"
for applet in $(busybox --list); do [[ $applet == busybox ]] || ln -s busybox "$root/bin/$applet"; done
# Without their debug info (most of their size): a smaller initramfs is packed, and unpacked by the emulated CPU,
# faster.
objcopy --strip-debug "$guest" "$root/bin/podid-guest-check"
install -m755 "$probe" "$root/bin/podid-probe"
objcopy --strip-debug "$agent" "$root/bin/podid-agent"
objcopy --strip-debug "$emulator" "$root/bin/podid-imds-emulator"
# The emulator's token signing key, made here: generating an RSA key on the emulated CPU takes seconds.
openssl genrsa -out "$root/etc/podid-emulator-key.pem" 2048 2>/dev/null
# Shared libraries at the same paths as on the build machine, with the dynamic loader.
for bin in "$guest" "$probe" "$agent" "$emulator"; do
  ldd "$bin" | grep -oE '/[^ ]+' | while read -r lib; do
    mkdir -p "$root$(dirname "$lib")" && cp -Ln "$lib" "$root$lib"
  done
done

# Debian's cloud kernels build veth and the tc pieces the interface guard uses (clsact qdisc, cls_bpf) as modules;
# load them from the package (a real node's kernel autoloads them on first use). CONFIG name:module name.
modules=()
for pair in VETH:veth NET_SCH_INGRESS:sch_ingress NET_CLS_BPF:cls_bpf; do
  opt=${pair%%:*} mod=${pair#*:}
  if grep -q "^CONFIG_$opt=m" "$config"; then
    ko=$(find "$tree/lib/modules/$kver" -name "$mod.ko*" | head -n1)
    [[ -n $ko ]] || { echo "podid-kernel: CONFIG_$opt=m but no module in $pkg" >&2; exit 3; }
    case $ko in
      *.xz) xz -dc "$ko" >"$root/lib/modules/$mod.ko" ;;
      *.zst) zstd -dcq "$ko" >"$root/lib/modules/$mod.ko" ;;
      *) cp "$ko" "$root/lib/modules/$mod.ko" ;;
    esac
    modules+=("$mod")
  fi
done

cat >"$root/init" <<INIT
#!/bin/busybox sh
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
# nsdelegate, as systemd mounts it: the kernel then refuses to move a process out of its cgroup namespace, which the
# agent phase of the check runs into (docs/kernels.md). The init cgroup namespace, where the rest runs, is not limited.
mkdir -p /sys/fs/cgroup && mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup
for m in ${modules[*]}; do insmod /lib/modules/\$m.ko || echo "PODID-KERNEL-CHECK module:\$m FAIL insmod failed"; done
echo PODID-KERNEL-BOOTED
podid-guest-check --guest-check --probe-bin /bin/podid-probe --ip-bin ip --agent-bin /bin/podid-agent \\
  --emulator-bin /bin/podid-imds-emulator --emulator-key /etc/podid-emulator-key.pem --expect-nsdelegate
poweroff -f
INIT
chmod 755 "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$work/initramfs.gz"
timing initramfs "$t1"

t2=$(now_ms)
# panic=-1 and -no-reboot turn a guest panic into a QEMU exit instead of a hang.
timeout "$boot_timeout" qemu-system-x86_64 -machine q35 -cpu max -smp 1 -m 512 -nographic -no-reboot \
  -kernel "$vmlinuz" -initrd "$work/initramfs.gz" -nic none \
  -append "console=ttyS0 panic=-1 rdinit=/init quiet loglevel=3" </dev/null || rc=$?
timing boot+check "$t2"
timing total "$t0"
exit "${rc:-0}"

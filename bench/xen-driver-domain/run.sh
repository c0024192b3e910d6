#!/usr/bin/env bash
# bench/xen-driver-domain: a PVH front end's xvda served by a driver domain (docs/xen.md, "A Linux
# guest as the driver domain"), 32 MiB of 1 MiB O_DIRECT writes then reads, timed by the front end:
#   run.sh sharpvisor   SharpVisor's blkback in a type = "driver" domain: grant copies over the link
#   run.sh linux        Debian's xen-blkback in a PVH guest: grant maps, served from its own xvda
# SHARPVISOR="dotnet /path/sharpvisor.dll" runs another build; the default guest must be built.
set -e
kind=${1:?usage: run.sh sharpvisor|linux}
root=$(cd "$(dirname "$0")/../.." && pwd)
S=${SHARPVISOR:-$root/sharpvisor}
cache=${SHARPVISOR_CACHE:-/var/cache/sharpvisor}
K=$cache/guest/current/vmlinuz
I=$cache/guest/current/initrd.img
dir=$(mktemp -d /tmp/sv-xen-dd.XXXXXX); cd $dir
export SHARPVISOR_RUNTIME_DIR=$dir/run
cleanup() {
  # Both domains and the daemon go, whatever failed (a VMM outlives its daemon by design).
  $S destroy fe >/dev/null 2>&1 || true
  $S destroy dd >/dev/null 2>&1 || true
  for pid in $(pgrep -f -- "--xen-link $dir/run/domains" || true); do kill "$pid" 2>/dev/null || true; done
  [ -f "$dir/run/sharpvisord.pid" ] && kill -TERM "$(cat "$dir/run/sharpvisord.pid")" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
truncate -s 64M dd.img
pad() { cat $I; s=$(stat -c %s $I); p=$(( (4 - s % 4) % 4 )); head -c $p /dev/zero; }
mkdir fe-cpio; cat > fe-cpio/hook.sh <<'H'
i=0; while [ ! -e /sys/block/xvda/size ] && [ $i -lt 3000 ]; do sleep 0.1; i=$((i+1)); done
dd if=/dev/urandom of=/tmp/p bs=1M count=32 2>/dev/null
s=$(cut -d' ' -f1 /proc/uptime); dd if=/tmp/p of=/dev/xvda bs=1M oflag=direct 2>/dev/null; sync; e=$(cut -d' ' -f1 /proc/uptime); echo "BENCH write 32 $s $e"
s=$(cut -d' ' -f1 /proc/uptime); dd if=/dev/xvda of=/dev/null bs=1M count=32 iflag=direct 2>/dev/null; e=$(cut -d' ' -f1 /proc/uptime); echo "BENCH read 32 $s $e"
echo BENCH-END
sleep 3600
H
(cd fe-cpio && find . -mindepth 1 | cpio -o -H newc --owner 0:0 2>/dev/null) > fe.cpio; { pad; cat fe.cpio; } > fe-initrd.img
if [ $kind = linux ]; then
  # xen-blkback.ko is not in the initramfs: take it from the kernel package the guest was built from.
  mkdir dd-cpio deb; dpkg-deb --fsys-tarfile "$(ls $cache/guest/debs/linux-image-*.deb)" | tar -x -C deb --wildcards '*/xen-blkback.ko'
  cp deb/lib/modules/*/kernel/drivers/block/xen-blkback/xen-blkback.ko dd-cpio/
  printf 'insmod /xen-blkback.ko; echo "BLKBACK $?"\nsleep 3600\n' > dd-cpio/hook.sh
  (cd dd-cpio && find . -mindepth 1 | cpio -o -H newc --owner 0:0 2>/dev/null) > dd.cpio; { pad; cat dd.cpio; } > dd-initrd.img
  cat > dd.cfg <<C
name = "dd"
type = "pvh"
kernel = "$K"
ramdisk = "$dir/dd-initrd.img"
extra = "console=hvc0 reboot=k panic=-1"
memory = 256
disk = [ 'file:$dir/dd.img,xvda,w' ]
C
  target=phy:/dev/xvda
else
  printf 'name = "dd"\ntype = "driver"\n' > dd.cfg
  target=file:$dir/dd.img
fi
cat > fe.cfg <<C
name = "fe"
type = "pvh"
kernel = "$K"
ramdisk = "$dir/fe-initrd.img"
extra = "console=hvc0 reboot=k panic=-1"
memory = 256
disk = [ '$target,xvda,w,backend=dd' ]
C
$S create dd.cfg --accel emulator >/dev/null
# one boot at a time: the front end starts once the driver domain has loaded blkback
if [ $kind = linux ]; then until $S console dd --history | grep -q BLKBACK; do sleep 2; done; fi
$S create fe.cfg --accel emulator >/dev/null
until $S console fe --history | grep -q BENCH-END; do sleep 2; done
$S console fe --history | grep "^BENCH " | awk -v k=$kind '{d=$5-$4; printf "%s %s %d MiB in %.2f s guest time: %.2f MiB/s\n", k, $2, $3, d, $3/d}'
echo "load $(cat /proc/loadavg)"

#!/usr/bin/env bash
# Build SharpVisor's default guest: Debian's cloud kernel (bzImage, unmodified)
# plus a small busybox initramfs carrying the virtio modules and /init.
# Everything comes from Debian packages via apt; see docs/guest.md.
#
# Usage: scripts/build-guest.sh [--refresh] [--verify-reproducible]
# stdout: KERNEL=<path> and INITRD=<path>; progress goes to stderr.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
INIT_TEMPLATE="$SCRIPT_DIR/guest/init"
CACHE_ROOT="${SHARPVISOR_CACHE:-/var/cache/sharpvisor}/guest"
DEB_DIR="$CACHE_ROOT/debs"
META_PKG=linux-image-cloud-amd64
BUSYBOX_PKG=busybox-static

# Modules the guest loads, as module-name:CONFIG_SYMBOL. The symbol is only
# used to tell "built in" (=y) from "missing". Transitive deps are added
# automatically from each module's depends= field.
WANTED_MODULES=(
	virtio_ring:VIRTIO
	virtio:VIRTIO
	virtio_pci_modern_dev:VIRTIO_PCI_LIB
	virtio_pci_legacy_dev:VIRTIO_PCI_LIB_LEGACY
	virtio_pci:VIRTIO_PCI
	virtio_mmio:VIRTIO_MMIO
	virtio_blk:VIRTIO_BLK
	failover:FAILOVER
	net_failover:NET_FAILOVER
	virtio_net:VIRTIO_NET
	virtio_console:VIRTIO_CONSOLE
	rng_core:HW_RANDOM
	virtio_rng:HW_RANDOM_VIRTIO
	virtio_balloon:VIRTIO_BALLOON
	vsock:VSOCKETS
	vmw_vsock_virtio_transport_common:VIRTIO_VSOCKETS_COMMON
	vmw_vsock_virtio_transport:VIRTIO_VSOCKETS
)

# Xen's PV front ends: /init loads these (xen.order) only when
# /sys/hypervisor/type reads xen, i.e. under `sharpvisor run --xen` (docs/xen.md).
XEN_MODULES=(
	xen_blkfront:XEN_BLKDEV_FRONTEND
	xen_netfront:XEN_NETDEV_FRONTEND
)

log() { printf 'build-guest: %s\n' "$*" >&2; }
die() { printf 'build-guest: ERROR: %s\n' "$*" >&2; exit 1; }

usage() {
	sed -n '2,7s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2
	exit "${1:-0}"
}

REFRESH=${SHARPVISOR_GUEST_REFRESH:-0}
VERIFY=0
for arg in "$@"; do
	case "$arg" in
	--refresh) REFRESH=1 ;;
	--verify-reproducible) VERIFY=1 ;;
	-h | --help) usage 0 ;;
	*) log "unknown argument: $arg"; usage 2 ;;
	esac
done

# The recipe hash ties a cached initrd to this script and the init template,
# so editing either rebuilds the initrd (without touching apt).
recipe_hash() {
	cat "${BASH_SOURCE[0]}" "$INIT_TEMPLATE" | sha256sum | cut -d' ' -f1
}

manifest_get() { # manifest_get FILE KEY
	sed -n "s/^$2=//p" "$1" | head -n1
}

# Fast path: current/ has a manifest that matches the recipe and the outputs.
# No apt, no root; a few sha256sums of ~10 MB.
fast_path() {
	local dir="$CACHE_ROOT/current" m="$CACHE_ROOT/current/manifest.txt"
	[ -f "$m" ] && [ -f "$dir/vmlinuz" ] && [ -f "$dir/initrd.img" ] || return 1
	[ "$(manifest_get "$m" recipe_sha256)" = "$(recipe_hash)" ] || return 1
	[ "$(manifest_get "$m" vmlinuz_sha256)" = "$(sha256sum <"$dir/vmlinuz" | cut -d' ' -f1)" ] || return 1
	[ "$(manifest_get "$m" initrd_sha256)" = "$(sha256sum <"$dir/initrd.img" | cut -d' ' -f1)" ] || return 1
	dir=$(cd -P "$dir" && pwd)
	printf 'KERNEL=%s\nINITRD=%s\n' "$dir/vmlinuz" "$dir/initrd.img"
}

if [ "$VERIFY" = 0 ] && [ "$REFRESH" != 1 ] && fast_path; then
	exit 0
fi

# ---------------------------------------------------------------- slow path
[ -f "$INIT_TEMPLATE" ] || die "missing init template $INIT_TEMPLATE"
# Root is needed for apt-get install and to mknod /dev/console in the staging
# tree (the kernel only gives init a console if the cpio carries that node).
[ "$(id -u)" = 0 ] || die "must run as root (apt-get install, mknod dev/console); cache: $CACHE_ROOT"

export DEBIAN_FRONTEND=noninteractive LC_ALL=C
APT_UPDATED=0
apt_update_once() {
	[ "$APT_UPDATED" = 1 ] && return 0
	log "apt-get update"
	apt-get update -qq >&2 || die "apt-get update failed"
	APT_UPDATED=1
}

# need_tool CMD PKG: install PKG when CMD is absent; update lists only if the
# install fails (e.g. a fresh machine with empty lists).
need_tool() {
	command -v "$1" >/dev/null 2>&1 && return 0
	log "installing $2 (for $1)"
	# apt's chatter goes to a log that is shown only on failure.
	local install=(apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300 "$2")
	local alog
	alog=$(mktemp)
	if ! "${install[@]}" >"$alog" 2>&1; then
		apt_update_once
		"${install[@]}" >"$alog" 2>&1 || { cat "$alog" >&2; rm -f "$alog"; die "apt-get install $2 failed"; }
	fi
	rm -f "$alog"
	command -v "$1" >/dev/null 2>&1 || die "$2 installed but $1 still missing"
}

need_tool cpio cpio
need_tool modinfo kmod
need_tool gzip gzip
need_tool flock util-linux

mkdir -p "$CACHE_ROOT" "$DEB_DIR"
# Serialise concurrent builds (e.g. parallel test runs on a cold cache).
exec 9>"$CACHE_ROOT/.lock"
flock 9
# Another run may have finished the build while we waited.
if [ "$VERIFY" = 0 ] && [ "$REFRESH" != 1 ] && fast_path; then
	exit 0
fi

# Which versions to build: reuse the ones recorded in current/ unless asked
# to refresh, so a recipe change never needs apt.
KPKG="" KVER="" BBVER=""
if [ "$REFRESH" != 1 ] && [ -f "$CACHE_ROOT/current/manifest.txt" ]; then
	m="$CACHE_ROOT/current/manifest.txt"
	KPKG=$(manifest_get "$m" kernel_package)
	KVER=$(manifest_get "$m" kernel_package_version)
	BBVER=$(manifest_get "$m" busybox_package_version)
fi
if [ -z "$KPKG" ] || [ -z "$KVER" ] || [ -z "$BBVER" ]; then
	resolve() {
		# The meta package depends on exactly one versioned image package.
		KPKG=$(apt-cache depends "$META_PKG" 2>/dev/null |
			sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\)$/\1/p' | head -n1)
		KVER="" BBVER=""
		[ -n "$KPKG" ] || return 1
		# One apt-cache call for both candidates (each call costs ~1 s).
		local pkg ver
		while read -r pkg ver; do
			case "$pkg" in "$KPKG") KVER=$ver ;; "$BUSYBOX_PKG") BBVER=$ver ;; esac
		done < <(apt-cache show --no-all-versions "$KPKG" "$BUSYBOX_PKG" 2>/dev/null |
			awk '/^Package: /{p=$2} /^Version: /{print p, $2}')
		[ -n "$KVER" ] && [ -n "$BBVER" ]
	}
	if [ "$REFRESH" = 1 ]; then apt_update_once; fi
	resolve || { apt_update_once; resolve; } ||
		die "cannot resolve $META_PKG / $BUSYBOX_PKG via apt-cache"
fi
log "kernel package $KPKG $KVER, $BUSYBOX_PKG $BBVER"

# deb_path PKG VER: cached .deb, downloaded with apt-get download if absent.
deb_path() {
	local pkg=$1 ver=$2 f tmp
	f="$DEB_DIR/${pkg}_${ver//:/%3a}_amd64.deb"
	if [ ! -f "$f" ]; then
		log "apt-get download $pkg=$ver"
		tmp=$(mktemp -d "$DEB_DIR/.dl.XXXXXX")
		# apt drops privileges to _apt for downloads; let it write here.
		if id _apt >/dev/null 2>&1; then chown _apt "$tmp"; fi
		if ! (cd "$tmp" && apt-get download -qq "$pkg=$ver" >&2); then
			apt_update_once
			(cd "$tmp" && apt-get download -qq "$pkg=$ver" >&2) ||
				{ rm -rf "$tmp"; die "apt-get download $pkg=$ver failed"; }
		fi
		mv "$tmp"/*.deb "$f"
		rm -rf "$tmp"
	fi
	if [ "$(dpkg-deb -f "$f" Package)" != "$pkg" ] || [ "$(dpkg-deb -f "$f" Version)" != "$ver" ]; then
		die "$f is not $pkg $ver"
	fi
	printf '%s\n' "$f"
}
KDEB=$(deb_path "$KPKG" "$KVER")
BBDEB=$(deb_path "$BUSYBOX_PKG" "$BBVER")

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sharpvisor-guest.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

log "extracting packages"
dpkg-deb -x "$KDEB" "$WORK/kpkg"
dpkg-deb -x "$BBDEB" "$WORK/bbpkg"
BUSYBOX="$WORK/bbpkg/bin/busybox"
[ -x "$BUSYBOX" ] || die "$BUSYBOX_PKG has no /bin/busybox"

shopt -s nullglob
vmlinuz_src=("$WORK"/kpkg/boot/vmlinuz-*)
config_src=("$WORK"/kpkg/boot/config-*)
[ ${#vmlinuz_src[@]} = 1 ] || die "expected one /boot/vmlinuz-* in $KPKG"
[ ${#config_src[@]} = 1 ] || die "expected one /boot/config-* in $KPKG"
KREL=${vmlinuz_src[0]##*/vmlinuz-}
KCONFIG=${config_src[0]}
MODROOT="$WORK/kpkg/lib/modules/$KREL"
[ -d "$MODROOT/kernel" ] || die "no /lib/modules/$KREL/kernel in $KPKG"

# Index every module file by module name ('-' and '_' are equivalent).
declare -A KO_PATH=()
while IFS= read -r -d '' f; do
	n=${f##*/}
	n=${n%%.ko*}
	KO_PATH[${n//-/_}]=$f
done < <(find "$MODROOT/kernel" -type f -name '*.ko*' -print0)
declare -A BUILTIN=()
if [ -f "$MODROOT/modules.builtin" ]; then
	while IFS= read -r f; do
		n=${f##*/}
		n=${n%%.ko*}
		BUILTIN[${n//-/_}]=1
	done <"$MODROOT/modules.builtin"
fi

# Depth-first post-order over depends= gives a valid load order; modinfo
# reads the .ko directly, so no modules.dep/depmod is needed.
declare -A STATE=() # 1 = visiting, 2 = done
LOAD_ORDER=()
BUILTIN_NOTES=()
visit() {
	local name=$1 sym=${2:-} dep deps
	case "${STATE[$name]:-0}" in 2) return 0 ;; 1) die "module dependency cycle at $name" ;; esac
	if [ -z "${KO_PATH[$name]:-}" ]; then
		if [ -n "${BUILTIN[$name]:-}" ] || { [ -n "$sym" ] && grep -qx "CONFIG_$sym=y" "$KCONFIG"; }; then
			log "note: $name is built into the kernel${sym:+ (CONFIG_$sym=y)}, skipping"
			BUILTIN_NOTES+=("$name")
			STATE[$name]=2
			return 0
		fi
		die "module $name is neither a .ko in $KPKG nor built in${sym:+ (CONFIG_$sym is not =y)}"
	fi
	STATE[$name]=1
	deps=$(modinfo -F depends "${KO_PATH[$name]}")
	for dep in ${deps//,/ }; do
		visit "${dep//-/_}"
	done
	STATE[$name]=2
	LOAD_ORDER+=("$name")
}
for spec in "${WANTED_MODULES[@]}"; do
	visit "${spec%%:*}" "${spec#*:}"
done
log "module load order: ${LOAD_ORDER[*]}"
BASE_ORDER=("${LOAD_ORDER[@]}")
LOAD_ORDER=()
for spec in "${XEN_MODULES[@]}"; do
	visit "${spec%%:*}" "${spec#*:}"
done
XEN_ORDER=("${LOAD_ORDER[@]}")
LOAD_ORDER=("${BASE_ORDER[@]}")
log "xen module load order: ${XEN_ORDER[*]}"

COMPRESSED=none
# stage_modules DIR ORDERFILE NAME...: the modules as plain .ko and their load order.
stage_modules() {
	local root=$1 order=$2 name src dst
	shift 2
	: >"$root/lib/modules/$KREL/$order"
	for name in "$@"; do
		src=${KO_PATH[$name]}
		dst="$root/lib/modules/$KREL/${src##*/}"
		case "$src" in
		*.ko) install -m 0644 "$src" "$dst" ;;
		*.ko.xz) need_tool xz xz-utils; xz -dc "$src" >"${dst%.xz}"; dst=${dst%.xz}; COMPRESSED=xz ;;
		*.ko.zst) need_tool zstd zstd; zstd -qdc "$src" >"${dst%.zst}"; dst=${dst%.zst}; COMPRESSED=zstd ;;
		*.ko.gz) gzip -dc "$src" >"${dst%.gz}"; dst=${dst%.gz}; COMPRESSED=gzip ;;
		*) die "unknown module format: $src" ;;
		esac
		chmod 0644 "$dst"
		printf '%s\n' "${dst##*/}" >>"$root/lib/modules/$KREL/$order"
	done
}

# stage_initramfs DIR: populate DIR with the initramfs tree.
stage_initramfs() {
	local root=$1 name src dst applet
	umask 022
	mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,root,etc,mnt,run} "$root/lib/modules/$KREL"
	chmod 1777 "$root/tmp"
	chmod 0700 "$root/root"
	install -m 0755 "$BUSYBOX" "$root/bin/busybox"
	# One symlink per applet, at the path busybox itself reports.
	while IFS= read -r applet; do
		case "$applet" in linuxrc | bin/busybox) continue ;; esac
		[ -e "$root/$applet" ] || [ -L "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
	done < <("$BUSYBOX" --list-full)
	for applet in sh mount insmod poweroff setsid cttyhack ip; do
		[ -L "$root/bin/$applet" ] || [ -L "$root/sbin/$applet" ] || [ -L "$root/usr/bin/$applet" ] ||
			[ -L "$root/usr/sbin/$applet" ] || die "busybox lacks applet $applet"
	done
	# busybox insmod cannot decompress, so store plain .ko files.
	stage_modules "$root" load.order "${LOAD_ORDER[@]}"
	stage_modules "$root" xen.order "${XEN_ORDER[@]}"
	install -m 0755 "$INIT_TEMPLATE" "$root/init"
	# Console and null nodes so init has fds 0/1/2 before devtmpfs is mounted.
	mknod -m 0600 "$root/dev/console" c 5 1
	mknod -m 0666 "$root/dev/null" c 1 3
}

# pack_initramfs DIR OUT: reproducible newc cpio, gzip'd.
pack_initramfs() {
	local root=$1 out=$2
	# Same bytes for the same inputs: fixed mtimes, sorted names, root owner,
	# renumbered inodes (--reproducible), no name/time in the gzip header.
	find "$root" -exec touch -h -d @0 {} +
	(cd "$root" && find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort |
		cpio --quiet -o -H newc -R 0:0 --reproducible) | gzip -n -9 >"$out"
}

build_initrd() { # build_initrd OUT
	local stage
	stage=$(mktemp -d "$WORK/stage.XXXXXX")
	stage_initramfs "$stage"
	pack_initramfs "$stage" "$1"
}

if [ "$VERIFY" = 1 ]; then
	log "verify-reproducible: building the initramfs twice"
	build_initrd "$WORK/a.img"
	# Second build from a different directory (different inodes/paths).
	build_initrd "$WORK/b.img"
	a=$(sha256sum <"$WORK/a.img" | cut -d' ' -f1)
	b=$(sha256sum <"$WORK/b.img" | cut -d' ' -f1)
	log "build 1: $a"
	log "build 2: $b"
	[ "$a" = "$b" ] || die "initramfs is NOT reproducible"
	cur="$CACHE_ROOT/current/manifest.txt"
	if [ -f "$cur" ] && [ "$(manifest_get "$cur" recipe_sha256)" = "$(recipe_hash)" ] &&
		[ "$(manifest_get "$cur" kernel_package_version)" = "$KVER" ] &&
		[ "$(manifest_get "$cur" busybox_package_version)" = "$BBVER" ]; then
		[ "$(manifest_get "$cur" initrd_sha256)" = "$a" ] || die "initramfs differs from cached $cur"
		log "matches cached initrd.img"
	fi
	log "initramfs is reproducible"
	exit 0
fi

DIR_NAME="${KVER//:/_}-${BBVER//:/_}"
OUT="$CACHE_ROOT/$DIR_NAME"
mkdir -p "$OUT"
log "building initramfs"
build_initrd "$WORK/initrd.img"
# The bzImage is used exactly as Debian ships it.
cp "${vmlinuz_src[0]}" "$WORK/vmlinuz"

rm -f "$OUT/manifest.txt" # invalid until both outputs are in place
mv -f "$WORK/vmlinuz" "$OUT/vmlinuz"
mv -f "$WORK/initrd.img" "$OUT/initrd.img"
{
	echo "# SharpVisor guest manifest (written by scripts/build-guest.sh)"
	echo "kernel_package=$KPKG"
	echo "kernel_package_version=$KVER"
	echo "kernel_release=$KREL"
	echo "kernel_deb_sha256=$(sha256sum <"$KDEB" | cut -d' ' -f1)"
	echo "busybox_package=$BUSYBOX_PKG"
	echo "busybox_package_version=$BBVER"
	echo "busybox_deb_sha256=$(sha256sum <"$BBDEB" | cut -d' ' -f1)"
	echo "modules_load_order=${LOAD_ORDER[*]}"
	echo "modules_xen_load_order=${XEN_ORDER[*]}"
	echo "modules_builtin=${BUILTIN_NOTES[*]}"
	echo "modules_compression=$COMPRESSED"
	echo "initrd_format=newc+gzip"
	echo "recipe_sha256=$(recipe_hash)"
	echo "vmlinuz_size=$(stat -c %s "$OUT/vmlinuz")"
	echo "vmlinuz_sha256=$(sha256sum <"$OUT/vmlinuz" | cut -d' ' -f1)"
	echo "initrd_size=$(stat -c %s "$OUT/initrd.img")"
	echo "initrd_sha256=$(sha256sum <"$OUT/initrd.img" | cut -d' ' -f1)"
} >"$OUT/manifest.txt.tmp"
mv -f "$OUT/manifest.txt.tmp" "$OUT/manifest.txt"
# Relative symlink, swapped atomically.
ln -sfn "$DIR_NAME" "$CACHE_ROOT/current.tmp"
mv -Tf "$CACHE_ROOT/current.tmp" "$CACHE_ROOT/current"
# Old .debs are only needed to rebuild old versions; keep the cache small.
for f in "$DEB_DIR"/*.deb; do
	[ "$f" = "$KDEB" ] || [ "$f" = "$BBDEB" ] || rm -f "$f"
done
log "done: $OUT ($(stat -c %s "$OUT/vmlinuz") + $(stat -c %s "$OUT/initrd.img") bytes)"

fast_path || die "fresh build does not pass its own manifest check"

#!/usr/bin/env bash
# Builds the fdbhook .deb and .rpm in dist/ from the static binaries in bin/
# (make build), with nfpm run through the Go module proxy, and records the
# checksums of what went in as dist/fdbhook-inputs.sha256. Needs neither
# dpkg-dev nor rpmbuild.
#
# Environment (all optional):
#   FDBHOOK_PKG_VERSION     package version (default: packaging/version.sh)
#   FDBHOOK_PKG_CONFIG      configuration file to ship (default: packaging/fdbhook.toml)
#   FDBHOOK_PKG_DIST        output directory (default: dist)
#   FDBHOOK_PKG_MAINTAINER  Maintainer/Packager field
#   FDBHOOK_PKG_NFPM        nfpm recipe (default: packaging/nfpm.yaml; test/distro
#                           builds an older release's layout with its own)
#   FDBHOOK_PKG_FORMATS     which packages to build (default: "deb rpm")
#   GOARCH                  target architecture (default: go env GOARCH)
set -euo pipefail

# The last nfpm release whose whole module graph the Go module proxy serves
# (v2.46 and later need go.digitalxero.dev/go-msix, which it refuses).
nfpm=github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export PATH="/usr/local/go/bin:$PATH"

die() {
	echo "packaging: $*" >&2
	exit 1
}

version=$(packaging/version.sh)
arch=${GOARCH:-$(go env GOARCH)}
config=${FDBHOOK_PKG_CONFIG:-packaging/fdbhook.toml}
dist=${FDBHOOK_PKG_DIST:-dist}
recipe=${FDBHOOK_PKG_NFPM:-packaging/nfpm.yaml}
formats=${FDBHOOK_PKG_FORMATS:-deb rpm}

for b in bin/qemu-hook bin/network-hook bin/lxc-hook bin/fdbhook; do
	[ -x "$b" ] || die "$b is missing: run 'make build' first"
done
[ -f LICENSE ] || die "LICENSE is missing at the top of the tree; the packages must ship the license (Apache-2.0)"
[ -f README.md ] || die "README.md is missing at the top of the tree; the packages ship it in /usr/share/doc/fdbhook"
[ -f "$config" ] || die "configuration file $config is missing"
[ -f "$recipe" ] || die "nfpm recipe $recipe is missing"
for packager in $formats; do
	case $packager in deb | rpm) ;; *) die "FDBHOOK_PKG_FORMATS: unknown package format $packager (deb, rpm)" ;; esac
done

# Both packages are made from one copy of the inputs, so that a bin/ or
# README.md rewritten meanwhile (a shared checkout) cannot split them.
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp bin/qemu-hook bin/network-hook bin/lxc-hook bin/fdbhook README.md LICENSE packaging/fdbhook.8 packaging/copyright packaging/fdbhook.service "$stage/"
cp "$config" "$stage/fdbhook.toml"
cp packaging/systemd/fdbhook-metrics.service packaging/systemd/fdbhook-metrics.timer \
	packaging/prometheus/fdbhook.rules.yml "$stage/"
for b in qemu-hook network-hook lxc-hook fdbhook; do
	# Static and for the package's architecture, or the package would lie.
	info=$(go version -m "$stage/$b") || die "bin/$b is not a Go binary"
	grep -q $'\tCGO_ENABLED=0$' <<<"$info" || die "bin/$b was not built with CGO_ENABLED=0"
	grep -q $'\tGOARCH='"$arch"'$' <<<"$info" || die "bin/$b is not built for GOARCH=$arch"
done
gzip -9n <"$stage/fdbhook.8" >"$stage/fdbhook.8.gz"

export FDBHOOK_PKG_VERSION=$version
export FDBHOOK_PKG_ARCH=$arch
export FDBHOOK_PKG_STAGE=$stage
export FDBHOOK_PKG_MAINTAINER=${FDBHOOK_PKG_MAINTAINER:-fdbhook developers <fdbhook@users.noreply.github.com>}
# Same input, same package: file times are the last commit's.
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
	SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || date +%s)
	export SOURCE_DATE_EPOCH
fi

mkdir -p "$dist"
rm -f "$dist"/fdbhook_*.deb "$dist"/fdbhook-*.rpm "$dist"/fdbhook-inputs.sha256
for packager in $formats; do
	if ! out=$(go run "$nfpm" package --config "$recipe" --packager "$packager" --target "$dist/" 2>&1); then
		printf '%s\n' "$out" >&2
		die "nfpm failed to build the $packager package"
	fi
done

# What went in, for packaging/test.sh to check the packages against.
(cd "$stage" && sha256sum qemu-hook network-hook lxc-hook fdbhook README.md LICENSE fdbhook.8 copyright fdbhook.toml fdbhook.service \
	fdbhook-metrics.service fdbhook-metrics.timer fdbhook.rules.yml) \
	>"$dist/fdbhook-inputs.sha256"

for packager in $formats; do
	case $packager in
	deb) p=$(echo "$dist"/fdbhook_*.deb) ;;
	rpm) p=$(echo "$dist"/fdbhook-*.rpm) ;;
	esac
	[ -f "$p" ] || die "nfpm wrote no package matching $p"
	printf 'packaging: %s (%s bytes)\n' "$p" "$(stat -c %s "$p")"
done

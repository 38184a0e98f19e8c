#!/usr/bin/env bash
# Prints the package version for the checked-out tree, derived from
# `git describe --tags --always` so that Debian and RPM both order builds
# the way they were made:
#
#   tag v1.2.3, at the tag          1.2.3
#   tag v1.2.3-rc1, at the tag      1.2.3~rc1        (sorts before 1.2.3)
#   tag v1.2.3, 4 commits later     1.2.3+git4.gabc1234
#   no tag yet, 17 commits          0.1.0~git17.gabc1234 (before the first release)
#
# FDBHOOK_PKG_VERSION overrides the result (it is still checked).
set -euo pipefail

# The first release; untagged builds sort just before it.
untagged_base=0.1.0

check() {
	if ! [[ $1 =~ ^[0-9][A-Za-z0-9.+~]*$ ]]; then
		echo "packaging: '$1' is not a valid package version (digits first; letters, digits, . + ~)" >&2
		exit 1
	fi
	printf '%s\n' "$1"
}

if [ -n "${FDBHOOK_PKG_VERSION:-}" ]; then
	check "$FDBHOOK_PKG_VERSION"
	exit 0
fi

cd "$(dirname "$0")/.."
if ! desc=$(git describe --tags --always --long --match 'v[0-9]*' 2>/dev/null); then
	echo "packaging: cannot describe the tree with git; set FDBHOOK_PKG_VERSION" >&2
	exit 1
fi

case "$desc" in
*-*-g*)
	# TAG-N-gSHA: N and SHA are the last two dash-separated fields.
	tag=${desc%-*-g*}
	rest=${desc#"$tag"-}
	n=${rest%%-*}
	sha=${rest#*-g}
	version=${tag#v}
	version=${version//-/\~}
	if [ "$n" != 0 ]; then
		version="$version+git$n.g$sha"
	fi
	;;
*)
	# No tag: a bare abbreviated commit id.
	version="$untagged_base~git$(git rev-list --count HEAD).g$desc"
	;;
esac
check "$version"

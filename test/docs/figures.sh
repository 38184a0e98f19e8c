#!/usr/bin/env bash
# Checks that every measured figure in the documentation (README.md and
# docs/*.md) appears in the committed bench/results.md: figures are quotes
# of a run, never typed by hand. A figure is a number with a decimal point
# and a unit: ms, x, MiB, %. docs/performance.md must quote the run (at least
# one figure). Prints each figure not found and exits 1 when there is one.
set -euo pipefail
cd "$(dirname "$0")/../.."
results=bench/results.md
missing=0 checked=0
figures() { grep -oE '[0-9]+\.[0-9]+ ?((ms|x|MiB)\b|%)' "$@" | sort -u || true; }
[ -n "$(figures docs/performance.md)" ] || { echo "docs/performance.md quotes no figure of $results" >&2; exit 1; }
while read -r fig; do
	[ -n "$fig" ] || continue
	file=${fig%%:*}
	fig=${fig#*:}
	checked=$((checked + 1))
	num=${fig%% *}
	num=${num%x}
	unit=${fig##*[0-9 ]}
	if ! grep -Eq "(^|[^0-9.])${num//./\\.} ?${unit}([^0-9A-Za-z]|$)" "$results"; then
		echo "$file: figure not in $results: $fig" >&2
		missing=$((missing + 1))
	fi
done < <(figures README.md docs/*.md)
if [ "$missing" -gt 0 ]; then
	echo "$missing of $checked documented figures are not in $results" >&2
	exit 1
fi
echo "documented figures: all $checked found in $results"

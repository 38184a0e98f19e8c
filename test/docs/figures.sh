#!/usr/bin/env bash
# Checks that every measured figure in the README's Performance section, the
# watcher's section ("Between start and stop") and the status timing quoted
# in "Operating it" appears in the committed bench/results.md: README figures
# are quotes of a run, never typed by hand. A figure is a number with a
# decimal point and a unit: ms, x, MiB, %. Prints each figure not found and
# exits 1 when there is one.
set -euo pipefail
cd "$(dirname "$0")/../.."
results=bench/results.md
section=$(awk '/^## Performance/ { on = 1; next } /^## / { on = 0 } on' README.md)
watcher=$(awk '/^### Between start and stop/ { on = 1; next } /^##/ { on = 0 } on' README.md)
[ -n "$watcher" ] || { echo "README: no section \"Between start and stop\"" >&2; exit 1; }
# The README wraps its lines: the status timing is looked for in the text
# joined into one line.
status=$(tr '\n' ' ' <README.md | grep -oE '[0-9][0-9.,]* ms[^.]*10,000 other static entries' || true)
[ -n "$status" ] || { echo "README: no status timing on a bridge with 10,000 other static entries" >&2; exit 1; }
missing=0 checked=0
while read -r fig; do
	[ -n "$fig" ] || continue
	checked=$((checked + 1))
	num=${fig%% *}
	num=${num%x}
	unit=${fig##*[0-9 ]}
	# results.md writes 10000 where the README writes 10,000.
	if ! grep -Eq "(^|[^0-9.])${num//./\\.} ?${unit}([^0-9A-Za-z]|$)" "$results"; then
		echo "README figure not in $results: $fig" >&2
		missing=$((missing + 1))
	fi
done < <(printf '%s\n%s\n%s\n' "$section" "$watcher" "$status" | grep -oE '[0-9]+\.[0-9]+ ?((ms|x|MiB)\b|%)' | sort -u)
[ "$checked" -gt 0 ] || { echo "no figures found in the README's Performance section" >&2; exit 1; }
if [ "$missing" -gt 0 ]; then
	echo "$missing of $checked README figures are not in $results" >&2
	exit 1
fi
echo "README figures: all $checked found in $results"

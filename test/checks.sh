# Pass/fail bookkeeping for the shell suites (packaging/test.sh,
# test/fleet/ansible.sh), sourced: each check prints one "ok" or "FAIL"
# line and counts it in $passed or $failed; the suite prints the totals.
# shellcheck shell=bash
passed=0
failed=0
pass() {
	passed=$((passed + 1))
	echo "  ok    $1"
}
fail() {
	failed=$((failed + 1))
	echo "  FAIL  $1"
	if [ -n "${2:-}" ]; then
		printf '%s\n' "$2" | sed 's/^/        | /'
	fi
}
# check DESC CMD...: passes when CMD succeeds.
check() {
	local desc=$1
	shift
	if "$@"; then pass "$desc"; else fail "$desc"; fi
}
# expect_eq DESC GOT WANT
expect_eq() {
	if [ "$2" = "$3" ]; then
		pass "$1"
	else
		fail "$1" "$(printf 'got:\n%s\nwant:\n%s' "$2" "$3")"
	fi
}
# expect_has DESC TEXT NEEDLE: TEXT contains the fixed string NEEDLE.
expect_has() {
	if grep -qF -- "$3" <<<"$2"; then
		pass "$1"
	else
		fail "$1" "$(printf 'no "%s" in:\n%s' "$3" "$2")"
	fi
}
# expect_line DESC TEXT LINE: TEXT has exactly this line.
expect_line() {
	if grep -qxF -- "$3" <<<"$2"; then
		pass "$1"
	else
		fail "$1" "$(printf 'no line "%s" in:\n%s' "$3" "$2")"
	fi
}
# expect_match DESC TEXT ERE: a line of TEXT matches the extended regex ERE.
expect_match() {
	if grep -qE -- "$3" <<<"$2"; then
		pass "$1"
	else
		fail "$1" "$(printf 'no line matching /%s/ in:\n%s' "$3" "$2")"
	fi
}
expect_lacks() {
	if grep -qF -- "$3" <<<"$2"; then
		fail "$1" "$(printf 'unexpected "%s" in:\n%s' "$3" "$2")"
	else
		pass "$1"
	fi
}

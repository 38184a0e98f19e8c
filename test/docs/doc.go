// Package docs tests the documentation against the programs: every
// command that README.md, the manual page (packaging/fdbhook.8) and the
// shipped configuration (packaging/fdbhook.toml) show is taken from the
// text and executed against binaries built from this tree, so that a
// command or flag renamed in the code, or mistyped in the text, fails
// `make check`.
//
// Commands in code blocks, the manual's SYNOPSIS and EXAMPLES are run in
// a scratch directory that stands in for /etc/fdbhook, /run/fdbhook and
// /run/libvirt (a guest's live XML there is a libvirt 9.0 fixture), in
// forms that change nothing: hooks with FDBHOOK_DRY_RUN=1, reconcile with
// --dry-run, the watcher with --help, make targets with make -n, and the
// bridge a command names replaced by one that does not exist. A command
// named inline in the prose runs as its --help, which must list every
// flag the text gives it. Other programs' commands are checked for what
// they name of fdbhook's: a unit, a path, a package file, the metadata
// they set.
//
// figures.sh, beside it, checks that every figure the documentation
// quotes is in bench/results.md.
package docs

// Package events says which libvirt hook events fdbhook acts on; the hooks
// ignore every other event (exit 0, no output, no configuration read).
//
// It imports next to nothing on purpose. Go initialises a program's
// packages in import-path order, each once its own imports are done, so a
// package that needs only os initialises before nearly all of the hook's
// dependencies (logrus, netlink, net, the TOML and XML parsers): the
// init functions of qemuexit and networkexit end the process there for an
// ignored event, which is three of the five hook calls of a guest's life.
package events

import "os"

// Qemu are the qemu hook's events, (operation, sub-operation), that
// fdbhook acts on: what it does for each is pkg/hook's table.
var Qemu = map[[2]string]bool{
	{"start", "begin"}:     true,
	{"reconnect", "begin"}: true,
	{"attach", "begin"}:    true,
	{"stopped", "end"}:     true,
	{"release", "end"}:     true,
	{"migrate", "begin"}:   true,
}

// Network are the network hook's events that apply bridge policy. libvirt
// creates a NAT network's bridge between "start" and "started", so both
// try. port-created, port-deleted, updated, stopped and unknown operations
// change nothing: per-port work happens in the qemu hook, which knows the
// tap.
var Network = map[[2]string]bool{
	{"start", "begin"}:   true,
	{"started", "begin"}: true,
}

// Ignored reports whether args, a hook binary's arguments after the
// program name, are a libvirt call of an event not in acts: OBJECT
// OPERATION SUB-OPERATION EXTRA, or the same after --dry-run (-n). Any
// other command line is not a call to ignore.
func Ignored(acts map[[2]string]bool, args []string) bool {
	if len(args) == 5 && (args[0] == "--dry-run" || args[0] == "-n") {
		args = args[1:]
	}
	return len(args) == 4 && !acts[[2]string{args[1], args[2]}]
}

// ExitIfIgnored ends the process with exit code 0 when its command line is
// a call of an event not in acts.
func ExitIfIgnored(acts map[[2]string]bool) {
	if Ignored(acts, os.Args[1:]) {
		os.Exit(0)
	}
}

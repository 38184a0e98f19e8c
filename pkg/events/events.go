// Package events says which libvirt hook events fdbhook acts on; the hooks
// ignore every other event (exit 0, no output, no configuration read).
//
// It imports only syscall, on purpose. Go initialises a program's
// packages in import-path order, each once its own imports are done, so a
// package that needs only syscall initialises before nearly all of the
// hook's dependencies (time and os, logrus, netlink, net, the TOML and XML
// parsers): the init functions of qemuexit, lxcexit and networkexit end the process
// there for an ignored event, which is three of the five hook calls of a
// guest's life. Importing os would initialise time first, and with it the
// TOML package's look-up of the local time zone (a tenth of a millisecond).
package events

import "syscall"

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

// Lxc are the lxc hook's events that fdbhook acts on: started, when a
// container's veths can first be proved its own, reconnect, and the stops.
var Lxc = map[[2]string]bool{
	{"started", "begin"}:   true,
	{"reconnect", "begin"}: true,
	{"stopped", "end"}:     true,
	{"release", "end"}:     true,
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
// a call of an event not in acts. A command line it cannot read is left to
// the hook.
func ExitIfIgnored(acts map[[2]string]bool) {
	if args, ok := commandLine(); ok && len(args) > 0 && Ignored(acts, args[1:]) {
		syscall.Exit(0)
	}
}

// commandLine returns the process's arguments (os.Args, which is not set
// before package os initialises) from /proc/self/cmdline; ok is false when
// it cannot be read whole.
func commandLine() (args []string, ok bool) {
	fd, err := syscall.Open("/proc/self/cmdline", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, false
	}
	defer syscall.Close(fd)
	var buf [4096]byte
	n, err := syscall.Read(fd, buf[:])
	if err != nil || n == 0 || n == len(buf) || buf[n-1] != 0 {
		return nil, false // unreadable, or longer than a hook call's
	}
	start := 0
	for i, c := range buf[:n] {
		if c == 0 {
			args = append(args, string(buf[start:i]))
			start = i + 1
		}
	}
	return args, true
}

// Package events is the hooks' one table of libvirt events: which ones
// fdbhook acts on, and what it does for each (Op); the hooks ignore every
// other event (exit 0, no output, no configuration read).
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

// Act is what fdbhook does for a hook event.
type Act uint8

const (
	// Ignore: nothing; no output, no configuration read, exit 0.
	Ignore Act = iota
	// Apply: plan the guest's start and carry it out.
	Apply
	// Cleanup: plan what the guest's stop leaves and clean it up.
	Cleanup
	// MarkIncoming: a live migration to this host begins; mark the guest.
	MarkIncoming
	// Policy: a managed network starts; apply its bridge's policy.
	Policy
)

// Op is one row of a hook's table: what an event does, and whether its
// failure may fail the operation. libvirt does not start a guest whose
// start hook fails, which is what on_error = "fail" asks for; where it
// would kill a running guest instead (reconnect, attach) or ignores the
// exit (stop), fdbhook always exits 0 and logs.
type Op struct {
	Act     Act
	MayFail bool
}

// Qemu is the qemu hook's table: the events fdbhook acts on. Any other
// event (prepare, started, restore, operations of newer libvirt
// versions) is ignored. migrate and restore in particular must print
// nothing: libvirt reads their stdout as replacement domain XML.
var Qemu = map[[2]string]Op{
	{"start", "begin"}:     {Apply, true},
	{"reconnect", "begin"}: {Apply, false},
	{"attach", "begin"}:    {Apply, false},
	{"stopped", "end"}:     {Cleanup, false},
	{"release", "end"}:     {Cleanup, false},
	{"migrate", "begin"}:   {MarkIncoming, false},
}

// Lxc is the lxc hook's table. libvirt's LXC driver calls prepare, start,
// started, stopped, release (and reconnect after a libvirtd restart). At
// start begin the host veth exists but its peer is still in the host's
// network namespace, and a NIC without <target dev> has no name yet; at
// started begin the peer is in the container's namespace, which proves
// the veth is the container's, and the container's veths were measured
// still down (testdata/libvirt-9.0-lxc/README.md). A non-zero exit at
// started begin makes libvirt stop the container.
var Lxc = map[[2]string]Op{
	{"started", "begin"}:   {Apply, true},
	{"reconnect", "begin"}: {Apply, false},
	{"stopped", "end"}:     {Cleanup, false},
	{"release", "end"}:     {Cleanup, false},
}

// Network is the network hook's table: libvirt creates a NAT network's
// bridge between "start" and "started", so both apply bridge policy.
// port-created, port-deleted, updated, stopped and unknown operations
// change nothing: per-port work happens in the domain hooks, which know
// the port. A failure never fails the network's start (the policy is
// applied again at every guest start), but a broken configuration does:
// the hook says so there.
var Network = map[[2]string]Op{
	{"start", "begin"}:   {Policy, false},
	{"started", "begin"}: {Policy, false},
}

// Acts reports whether table acts on (op, subop).
func Acts(table map[[2]string]Op, op, subop string) bool {
	return table[[2]string{op, subop}].Act != Ignore
}

// Ignored reports whether args, a hook binary's arguments after the
// program name, are a libvirt call of an event table does not act on:
// OBJECT OPERATION SUB-OPERATION EXTRA, or the same after --dry-run (-n).
// Any other command line is not a call to ignore.
func Ignored(table map[[2]string]Op, args []string) bool {
	if len(args) == 5 && (args[0] == "--dry-run" || args[0] == "-n") {
		args = args[1:]
	}
	return len(args) == 4 && !Acts(table, args[1], args[2])
}

// ExitIfIgnored ends the process with exit code 0 when its command line is
// a call of an event table does not act on. A command line it cannot read
// is left to the hook.
func ExitIfIgnored(table map[[2]string]Op) {
	if args, ok := commandLine(); ok && len(args) > 0 && Ignored(table, args[1:]) {
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

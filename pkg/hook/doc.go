// Package hook is what the qemu-hook, lxc-hook and network-hook binaries
// run, and only their input and output: it parses the command line
// libvirt gives (a hook event, or --dry-run, --help, --version; anything
// else exits 2 and points to fdbhook), looks up what the event does in
// the hook's table (package events; an ignored event returns before the
// configuration is read or the log opened), reads the configuration and
// the domain (or network) XML on standard input, hands the event to the
// engine (manage.Hook, manage.BridgePolicy), and turns the outcome into
// the exit code libvirt acts on and the one line it shows. It never
// writes to stdout in hook mode.
//
// Stdio, the host's paths, the clock and the kernel connection are
// injected through Runner (a host.Env; main fills it with the real
// world: NewRunner), so the whole event path is tested with buffers and a
// fake kernel. The admin commands are package cli, which the hook
// binaries do not link.
package hook

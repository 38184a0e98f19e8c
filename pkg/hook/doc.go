// Package hook is what the qemu-hook, lxc-hook and network-hook binaries run: it
// parses the command line libvirt gives (a hook event, or --dry-run,
// --help, --version; anything else exits 2 and points to fdbhook), looks
// up what the operation does in package events' table of the hook (apply,
// clean up, mark, policy or ignore), plans the event (package plan),
// applies it under the run lock
// (package apply), and turns the outcome into the exit code libvirt acts
// on. An ignored operation returns before the configuration is read or
// the log opened. On a live migration's destination it marks the guest
// in the run directory so that its entries wait for the resume.
//
// Stdio, environment, kernel connection, lock, run directory and
// libvirt's paths are injected through Runner (main fills them with the
// real world: NewRunner), so the whole event path is tested with buffers
// and a test network namespace. The admin commands are package cli, which
// the hook binaries do not link.
package hook

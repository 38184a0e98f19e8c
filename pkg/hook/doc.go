// Package hook is what the qemu-hook, lxc-hook and network-hook binaries run: it
// parses the command line libvirt gives (a hook event, or --dry-run,
// --help, --version), maps each libvirt operation to apply, clean up or
// ignore in one table per hook, and turns the outcome into the exit code
// libvirt acts on. Stdio, environment, kernel connection, lock and libvirt's
// paths are injected through Runner, so the whole event path is tested with
// buffers. The admin commands are package cli, which the hook binaries do
// not link.
package hook

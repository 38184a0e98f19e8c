// Package hook is what the qemu-hook and network-hook binaries run: it
// parses the command line libvirt (or an admin) gives, maps each libvirt
// operation to apply, clean up or ignore, and turns the outcome into the
// exit code libvirt acts on. All I/O is injected through Runner, so the whole
// event path is tested with buffers.
package hook

// Package cli is the fdbhook command (/usr/sbin/fdbhook): the admin
// commands status, doctor, reconcile and explain, dispatched from one table
// of commands. Each command runs against an Env that holds its standard
// input, output, error and environment, and the host it acts on (kernel,
// lock, libvirt's files), so tests run it with buffers and a namespace.
//
// The libvirt hooks are not here: they are pkg/hook, which the hook
// binaries link without this package.
package cli

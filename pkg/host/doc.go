// Package host describes, in one place, the host every fdbhook program
// runs on and what one run of a program has: where the configuration, the
// run directory, the lock and libvirt's files and sockets are, and which
// FDBHOOK_* environment variable moves each (Host, FromEnv); the standard
// streams, the clock and the kernel connection of a run (Env); and the
// exit codes the hooks, the fdbhook command and the watcher share.
//
// libvirt runs hooks with an empty environment, so in production every
// path is the default; the variables are for tests and manual runs. The
// hook binaries link this package: it imports nothing heavier than they
// already do.
package host

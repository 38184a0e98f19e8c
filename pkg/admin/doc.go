// Package admin answers an admin's questions from outside hook mode: is
// fdbhook working on this host (status), would it work here (doctor), and
// how are guests that were already running brought under management
// (reconcile). It reads only the kernel, the configuration and libvirt's
// own files, never the libvirt API. Status and reconcile work on one
// Snapshot of the kernel (one link dump, one FDB dump per bridge, indexed),
// so their cost does not grow with guests times entries; the decisions
// are pure functions of that snapshot and are tested with a fake kernel.
package admin

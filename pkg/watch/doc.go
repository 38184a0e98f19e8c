// Package watch is "fdbhook watch": a long-running companion of the hooks
// that keeps every running guest's managed ports exactly as a start would
// leave them, between the start and the stop no hook sees.
//
// It is a level-triggered controller. Event sources (libvirt's domain
// events, the kernel's link and FDB notifications, changes of libvirt's
// live XML files and of the configuration, a slow timer) only name which
// guest (or port) may have changed; a single worker then re-reads the
// guest's live XML and the kernel and runs the hook's planner and applier
// on it (manage.ReconcileGuest), under the hooks' lock, all or nothing per
// guest. Keys are de-duplicated while they wait, so a burst of events for
// one guest is one reconcile; a guest that fails is retried with backoff,
// a bounded number of times. A full resync runs at start-up, after any
// sign of lost events (netlink ENOBUFS, a libvirt reconnect) and on the
// timer.
//
// Only cmd/fdbhook imports this package: the hook binaries must not link
// libvirt's RPC client.
package watch

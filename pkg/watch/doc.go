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
// sign of lost events (netlink ENOBUFS, at most one per holdoff while
// losses go on; a libvirt reconnect) and on the timer.
//
// Its cost follows the guests, not the bridges' FDB traffic: the netlink
// source's socket filter keeps only the FDB notifications that concern the
// running guests' ports and MACs (the watchlist the worker gives it after
// every batch) or static and locked entries, and a batch looks FDB
// entries up per MAC instead of dumping a bridge's FDB.
//
// Under undeclared_macs = "report", a locked entry on a guest's port (a
// MAC the guest sent from undeclared) names the port like any entry on
// it; the worker logs each such MAC of a NIC once, and again only after
// its entry went and came back (Watcher.reportUndeclared).
//
// Only cmd/fdbhook imports this package: the hook binaries must not link
// libvirt's RPC client.
package watch

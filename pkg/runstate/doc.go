// Package runstate holds what fdbhook keeps between runs in its run
// directory (/run/fdbhook, a tmpfs: nothing survives a reboot, nor needs
// to): the marks of incoming live migrations, which tell the hook's
// "start begin" and the watcher's "resumed" which of them writes a guest's
// static entries, and the lock that says a watcher is running.
//
// The hook and the watcher are separate processes; this package is the
// whole contract between them. It imports nothing of fdbhook's, so the
// hook binaries can use it without linking the watcher.
package runstate

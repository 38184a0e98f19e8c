// Package metrics turns what 'fdbhook status' finds (pkg/admin's analysis,
// not a second one) and what the run directory records (hook run counts,
// the watcher's lock, the last reconcile) into Prometheus metrics, with
// the Prometheus client library. It serves two exports: a node_exporter
// textfile (WriteTextfile, for 'fdbhook metrics --textfile DIR' from a
// timer) and an http.Handler the watcher mounts on /metrics.
//
// Only the admin binary links this package: the hook binaries must stay
// free of the client library.
package metrics

// Package reconcile is fdbhook's engine: what every program does to a
// guest's bridge ports, in one place. The hooks, the fdbhook command
// (status, reconcile, explain, metrics) and the watcher each keep only
// their own input and output and call it for every decision.
package reconcile

// Package manage is fdbhook's engine: how a guest's bridge ports are
// managed, decided in one place for every program. The hooks, the fdbhook
// command (status, reconcile, explain, metrics) and the watcher keep only
// their own input and output and call it for each decision: which planner
// a guest's start gets and what proves a container's veths its own
// (StartPlan, HostView.Container), and whether a guest is arriving by live
// migration (Migration).
package manage

// Package manage is fdbhook's engine: how a guest's bridge ports are
// managed, decided in one place for every program. The hooks, the fdbhook
// command (status, reconcile, explain, metrics) and the watcher keep only
// their own input and output and call it for each decision:
//
//   - reading the host's state: the running guests of both of libvirt's
//     drivers (Live), their definitions (ReadDefined), the kernel in one
//     snapshot (Take), all of it joined (ReadState);
//   - which planner a guest's start gets, and what proves a container's
//     veths its own (StartPlan, HostView.Container, Prove);
//   - whether a guest is arriving by live migration, has arrived, or the
//     mark is stale (Migration), and whether it started or resumed since it
//     was last seen (Started);
//   - whose a duplicate MAC is (State.DecideMAC), whose a static entry is
//     and whether it is stale (Analysis.Classify);
//   - refusals (plan.Plan.Refused), the dry run (DryRun), applying a
//     guest's start and recording it in the snapshot (ReconcileGuest,
//     Reconcile), deleting stale entries (CleanStale).
//
// Status and reconcile work on one Snapshot of the kernel (one link dump,
// one FDB dump per bridge, indexed), so their cost does not grow with
// guests times entries. Package admin lays the results out as reports.
package manage

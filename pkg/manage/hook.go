package manage

import (
	"context"
	"fmt"

	"github.com/sirupsen/logrus"

	"github.com/fdbhook/fdbhook/pkg/apply"
	"github.com/fdbhook/fdbhook/pkg/config"
	"github.com/fdbhook/fdbhook/pkg/events"
	"github.com/fdbhook/fdbhook/pkg/guest"
	"github.com/fdbhook/fdbhook/pkg/host"
	"github.com/fdbhook/fdbhook/pkg/libvirt"
	"github.com/fdbhook/fdbhook/pkg/model"
	"github.com/fdbhook/fdbhook/pkg/plan"
	"github.com/fdbhook/fdbhook/pkg/runstate"
)

// Event is one hook event on a guest, as its hook read it.
type Event struct {
	// Op is libvirt's operation (start, stopped, migrate, …); Act what the
	// hook's table says it does.
	Op  string
	Act events.Act
	// Guest is the domain XML libvirt handed the hook.
	Guest *guest.Guest
	// Dry: plan and print, change nothing.
	Dry bool
	// Migrates: a start of this driver's guests may be a live migration's
	// destination (libvirt migrates QEMU guests, not containers).
	Migrates bool
	Log      *logrus.Entry
}

// Hook carries out a domain hook's event on the host of env with the
// configuration cfg: it marks an incoming live migration, or, under the
// run lock, plans the guest's start (StartPlan, Migration) or stop
// against the kernel and libvirt's files, prints it (a dry run, on
// env.Stderr) or carries it out, all or nothing, and records the run in
// the run directory. counted says the run is in the run counts.
func Hook(env *host.Env, cfg *config.Config, ev Event) (counted bool, err error) {
	if ev.Act == events.MarkIncoming {
		markIncoming(env, ev)
		return CountRun(env, ev.Op, false, ev.Dry, ev.Log), nil
	}
	if !ev.Dry {
		unlock, lerr := env.TakeLock(context.Background())
		if lerr != nil {
			return false, lerr
		}
		defer unlock()
		defer func() { counted = countRun(env.RunDir, ev.Op, err != nil, ev.Log) }() // before unlock: the count needs the lock
	}
	k, err := env.OpenKernel()
	if err != nil {
		return false, err
	}
	defer k.Close()
	v := HostView{Reader: k, Files: libvirt.New(env.Libvirt)}
	p, incoming, err := hookPlan(env, cfg, ev, k, v)
	if err != nil {
		return false, err
	}
	if ev.Dry {
		DryRun(env.Stderr, ev.Op, p)
		return false, nil
	}
	logPlan(p, ev.Log)
	return false, carryOut(env, ev, k, p, incoming)
}

// hookPlan makes the event's plan: the guest's start (its ports read ahead
// first), reduced for a live migration's destination, or its stop, which
// clears its migration mark (unless dry): whether the migration finished,
// failed or was cancelled, nothing is due any more.
func hookPlan(env *host.Env, cfg *config.Config, ev Event, k model.Kernel, v HostView) (p *plan.Plan, incoming bool, err error) {
	followedForHook(env.RunDir, ev)
	if ev.Act == events.Apply {
		prefetch(k, ev.Guest)
		if p, err = StartPlan(cfg, ev.Guest, v, v); err != nil || !ev.Migrates || ev.Op != "start" {
			return p, false, err
		}
		return forIncoming(env, p, v, ev)
	}
	p, err = plan.Stop(cfg, ev.Guest, v)
	if !ev.Dry {
		if cerr := env.RunDir.ClearMark(ev.Guest.Name); cerr != nil {
			ev.Log.Warn(cerr)
		}
	}
	return p, false, err
}

// carryOut applies or cleans up what the plan says; a plan with refusals
// changes nothing and is the event's error.
func carryOut(env *host.Env, ev Event, k model.ReadWriter, p *plan.Plan, incoming bool) error {
	if ev.Act == events.Cleanup {
		if err := apply.Cleanup(k, p.Steps); err != nil {
			return err
		}
		clearFollowed(env.RunDir, ev)
		if len(p.Steps) > 0 {
			ev.Log.Infof("%s: cleaned up %d leftover entries/ports", ev.Op, len(p.Steps))
		}
		return nil
	}
	if err := p.Refused(); err != nil {
		return err
	}
	if err := apply.Apply(k, p.Steps); err != nil {
		return err
	}
	if incoming {
		markPending(env, ev)
	}
	for _, s := range p.Steps {
		ev.Log.Infof("%s: %s", ev.Op, s)
	}
	if len(p.Steps) == 0 {
		ev.Log.Debugf("%s: nothing to change", ev.Op)
	}
	return nil
}

// prefetch hands k the guest's ports and MACs to read ahead: the ports,
// their bridges, and the FDB entries of the MACs. It changes no answer,
// only how many round trips they take.
func prefetch(k model.Kernel, g *guest.Guest) {
	ports := map[string][]string{}
	for _, nic := range g.NICs {
		if nic.Target == "" || nic.BadMAC != nil {
			continue
		}
		ports[nic.Target] = append(ports[nic.Target], g.Metadata(nic).MACs()...)
	}
	k.Prefetch(ports)
}

func logPlan(p *plan.Plan, log *logrus.Entry) {
	for _, s := range p.Skips {
		log.Debugf("%s %s: skipped: %s", s.NIC, s.MAC, s.Reason)
	}
	for _, n := range p.Notes {
		log.Info(n)
	}
	for _, w := range p.Warnings {
		log.Warn(w)
	}
}

// Live migration, on the destination: libvirt runs "migrate begin",
// "prepare begin", "start begin" and "started begin" while the guest still
// runs on the source, and no hook at all when its CPUs start here. The
// hook marks the guest at "migrate begin" and gives its ports the reduced
// plan of plan.Incoming at "start begin"; the watcher (or reconcile) writes
// the entries once the guest runs here. "stopped end" and "release end"
// clear the mark, so a failed or cancelled migration leaves none.

// markIncoming records that the event's guest is arriving by live
// migration. It never fails: a failed "migrate begin" fails the migration,
// and an unmarked start only writes the entries early.
func markIncoming(env *host.Env, ev Event) {
	g := ev.Guest
	m := runstate.Mark{Guest: g.Name, UUID: g.UUID, Phase: runstate.Incoming, Since: env.Clock()}
	if ev.Dry {
		ev.Log.Infof("dry run: would mark an incoming live migration in %s", env.RunDir)
		return
	}
	if err := env.RunDir.PutMark(m); err != nil {
		ev.Log.Errorf("migrate begin: cannot mark the incoming migration (%v): its start will write the static entries at once", err)
		return
	}
	ev.Log.Infof("migrate begin: incoming live migration marked; its start leaves the static entries for the resume")
}

// forIncoming returns the plan a "start begin" carries out: start itself,
// or its reduction when the guest is arriving by live migration
// (Migration). A stale mark is removed (unless dry) and the start is an
// ordinary one.
func forIncoming(env *host.Env, start *plan.Plan, v plan.View, ev Event) (p *plan.Plan, incoming bool, err error) {
	mark, err := ReadMark(env.RunDir, ev.Guest.Name)
	if err != nil {
		ev.Log.Warnf("start: %v: starting as an ordinary start", err)
	}
	a, clear, why := Migration(mark, ev.Guest, env.Clock())
	if clear {
		ev.Log.Warnf("start: ignoring %s: an ordinary start", why)
		if !ev.Dry {
			if err := env.RunDir.ClearMark(ev.Guest.Name); err != nil {
				ev.Log.Warn(err)
			}
		}
	}
	if a != Arriving {
		return start, false, nil
	}
	_, watcher, err := env.RunDir.WatcherRunning()
	if err != nil {
		ev.Log.Warnf("start: %v: assuming no watcher runs", err)
	}
	p, err = plan.Incoming(start, v, watcher)
	return p, true, err
}

// markPending records that the incoming guest's ports are ready and its
// entries are due at the resume.
func markPending(env *host.Env, ev Event) {
	g := ev.Guest
	m, ok, err := env.RunDir.GetMark(g.Name)
	if err != nil || !ok {
		m = runstate.Mark{Guest: g.Name, UUID: g.UUID, Since: env.Clock()}
	}
	m.Phase = runstate.Pending
	if err := env.RunDir.PutMark(m); err != nil {
		ev.Log.Warnf("start: %v", err)
	}
}

// countRun adds a run of op to the counts in run, for the metrics, and
// reports whether it did. The caller holds the lock. A count that cannot
// be written is logged (when log is set) and changes nothing about the
// run.
func countRun(run runstate.Dir, op string, failed bool, log *logrus.Entry) bool {
	if run == "" {
		return false
	}
	if err := run.CountHookRun(op, failed); err != nil {
		if log != nil {
			log.Warnf("%s: counting the run: %v", op, err)
		}
		return false
	}
	return true
}

// CountRun counts a hook run that did not take the lock for its work: one
// that failed before it (a bad configuration, bad input) or needs none
// (the mark of an incoming migration). It takes the lock for the count,
// and reports whether it counted. Dry runs are not counted.
func CountRun(env *host.Env, op string, failed, dry bool, log *logrus.Entry) bool {
	if dry || env.RunDir == "" {
		return false
	}
	unlock, err := env.TakeLock(context.Background())
	if err != nil {
		return false
	}
	defer unlock()
	return countRun(env.RunDir, op, failed, log)
}

// BridgePolicy applies plan.BridgePolicy to bridge, a managed network's, at
// its network's event op: planned under the run lock (a guest starting
// meanwhile must not add an entry the plan has not seen), printed (dry) or
// carried out.
func BridgePolicy(env *host.Env, cfg *config.Config, bridge, op string, dry bool, log *logrus.Entry) error {
	k, err := env.OpenKernel()
	if err != nil {
		return err
	}
	defer k.Close()
	br, err := k.Link(bridge)
	switch {
	case err != nil:
		return err
	case br == nil:
		log.Debugf("%s: bridge %s does not exist yet", op, bridge)
		return nil
	case br.Type != "bridge":
		return fmt.Errorf("%s is %s, not a bridge", bridge, br.Describe())
	}
	if !dry {
		unlock, err := env.TakeLock(context.Background())
		if err != nil {
			return err
		}
		defer unlock()
	}
	steps, warning, _, err := plan.BridgePolicy(cfg, HostView{Reader: k, Files: libvirt.New(env.Libvirt)}, br)
	if warning != "" {
		log.Warn(warning)
	}
	if err != nil || len(steps) == 0 {
		return err
	}
	if dry {
		DryRun(env.Stderr, op, &plan.Plan{Guest: "bridge " + bridge, Steps: steps})
		return nil
	}
	if err := apply.Apply(k, steps); err != nil {
		return err
	}
	for _, s := range steps {
		log.Infof("%s: %s", op, s)
	}
	return nil
}

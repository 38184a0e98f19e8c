package hook

import (
	"time"

	"github.com/sirupsen/logrus"

	"github.com/fdbhook/fdbhook/pkg/guest"
	"github.com/fdbhook/fdbhook/pkg/manage"
	"github.com/fdbhook/fdbhook/pkg/plan"
	"github.com/fdbhook/fdbhook/pkg/runstate"
)

// Live migration, on the destination: libvirt runs "migrate begin",
// "prepare begin", "start begin" and "started begin" while the guest still
// runs on the source, and no hook at all when its CPUs start here. The
// hook marks the guest at "migrate begin" and gives its ports the reduced
// plan of plan.Incoming at "start begin"; the watcher (or reconcile) writes
// the entries once the guest runs here. "stopped end" and "release end"
// clear the mark, so a failed or cancelled migration leaves none.

func (r *Runner) runDir() runstate.Dir { return r.RunDir }

func (r *Runner) now() time.Time { return r.Clock() }

// markIncoming records that g is arriving by live migration. It never
// fails: a failed "migrate begin" fails the migration.
func (r *Runner) markIncoming(g *guest.Guest, dry bool, log *logrus.Entry) error {
	m := runstate.Mark{Guest: g.Name, UUID: g.UUID, Phase: runstate.Incoming, Since: r.now()}
	if dry {
		log.Infof("dry run: would mark an incoming live migration in %s", r.runDir())
		return nil
	}
	if err := r.runDir().PutMark(m); err != nil {
		// Failing here would fail the migration; an unmarked start only
		// writes the entries early.
		log.Errorf("migrate begin: cannot mark the incoming migration (%v): its start will write the static entries at once", err)
		return nil
	}
	log.Infof("migrate begin: incoming live migration marked; its start leaves the static entries for the resume")
	return nil
}

// forIncoming returns the plan a "start begin" carries out: start itself,
// or its reduction when g is arriving by live migration (manage.Migration).
// A stale mark is removed (unless dry) and the start is an ordinary one.
func (r *Runner) forIncoming(start *plan.Plan, v plan.View, g *guest.Guest, dry bool, log *logrus.Entry) (p *plan.Plan, incoming bool, err error) {
	d := r.runDir()
	mark, err := manage.ReadMark(d, g.Name)
	if err != nil {
		log.Warnf("start: %v: starting as an ordinary start", err)
	}
	a, clear, why := manage.Migration(mark, g, r.now())
	if clear {
		log.Warnf("start: ignoring %s: an ordinary start", why)
		if !dry {
			if err := d.ClearMark(g.Name); err != nil {
				log.Warn(err)
			}
		}
	}
	if a != manage.Arriving {
		return start, false, nil
	}
	_, watcher, err := d.WatcherRunning()
	if err != nil {
		log.Warnf("start: %v: assuming no watcher runs", err)
	}
	p, err = plan.Incoming(start, v, watcher)
	return p, true, err
}

// markPending records that the incoming guest's ports are ready and its
// entries are due at the resume.
func (r *Runner) markPending(g *guest.Guest, log *logrus.Entry) {
	m, ok, err := r.runDir().GetMark(g.Name)
	if err != nil || !ok {
		m = runstate.Mark{Guest: g.Name, UUID: g.UUID, Since: r.now()}
	}
	m.Phase = runstate.Pending
	if err := r.runDir().PutMark(m); err != nil {
		log.Warnf("start: %v", err)
	}
}

// clearMark forgets an incoming migration at the guest's stop: whether it
// finished, failed or was cancelled, nothing is due any more.
func (r *Runner) clearMark(name string, log *logrus.Entry) {
	if err := r.runDir().ClearMark(name); err != nil {
		log.Warn(err)
	}
}

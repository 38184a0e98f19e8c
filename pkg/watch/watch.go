package watch

import (
	"context"
	"errors"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/fdbhook/fdbhook/pkg/config"
	"github.com/fdbhook/fdbhook/pkg/guest"
	"github.com/fdbhook/fdbhook/pkg/host"
	"github.com/fdbhook/fdbhook/pkg/manage"
	"github.com/fdbhook/fdbhook/pkg/model"
	"github.com/fdbhook/fdbhook/pkg/plan"
	"github.com/fdbhook/fdbhook/pkg/runstate"
)

// Event is a hint from a source: something about a guest, a port, or
// everything may have changed. The worker decides what to do from the
// live XML and the kernel, never from the event: whether the guest
// started or resumed here since it was last seen (manage.Started), is
// arriving by live migration or has arrived (manage.Migration), or is
// migrating away.
type Event struct {
	// Guest names a guest; Port (or PortIndex) a network device whose
	// guest is looked up.
	Guest     string
	Port      string
	PortIndex int
	// Resync asks for a reconcile of every running guest (events may have
	// been lost); Reload re-reads the configuration first.
	Resync bool
	Reload bool
	// Why says where the event came from, for the debug log.
	Why string
}

// Source is one kind of event: it runs until ctx ends and hands its
// events to emit, which never blocks.
type Source interface {
	Name() string
	Run(ctx context.Context, emit func(Event))
}

// Watcher is the controller. Fill it in and call Run.
type Watcher struct {
	Log *logrus.Logger
	// Host is where everything is: the configuration (read again on
	// Reload events), libvirt's files, the run directory (the watcher's
	// lock, the migration marks) and the hooks' run lock, held around
	// every batch of work.
	Host       host.Host
	OpenKernel func() (model.Kernel, error)
	Sources    []Source
	// Debounce delays a reconcile after its first event, so a burst is
	// one reconcile. Backoff is the first retry delay of a failed guest,
	// doubled on every retry, at most MaxAttempts times in a row.
	Debounce    time.Duration
	Backoff     time.Duration
	MaxAttempts int
	// Clock is the watcher's time; nil means SystemClock.
	Clock Clock
	// Processed, when set, is called after every batch (for tests and
	// benchmarks): which guests were reconciled, and whether a resync ran.
	Processed func(guests []string, resync bool)

	cfg   *config.Config
	q     *queue
	live  *manage.Live
	roams map[string]map[string]string // guest → MAC → port it was last reported on
	// undeclared is, per guest, the undeclared MACs already logged, as
	// "NIC port MAC" (reportUndeclared); warned the plan warnings already
	// logged (warnOnce).
	undeclared map[string]map[string]bool
	warned     map[string]map[string]bool
	failed     map[string]string // guest → last error logged
	// seen is what each running guest's live XML said when it was last
	// reconciled, by seenKey; primed once the running guests were first
	// read (a guest running at start-up did not start then).
	seen   map[string]manage.Sighting
	primed bool
}

// Defaults for the Watcher's tunables.
const (
	DefaultDebounce    = 15 * time.Millisecond
	DefaultBackoff     = 100 * time.Millisecond
	DefaultMaxAttempts = 6
)

// Run holds the watcher lock, reconciles everything once, then serves
// events until ctx ends. It returns nil after a clean shutdown: every
// source stopped and the lock released.
func (w *Watcher) Run(ctx context.Context) error {
	release, err := w.open()
	if err != nil {
		return err
	}
	defer release()
	defer w.startSources(ctx)()
	w.Log.Infof("watching: configuration %s, resync every %s, %d sources", w.Host.Config, w.cfg.Watch.ResyncInterval, len(w.Sources))
	for {
		b, ok := w.q.next(ctx)
		if !ok {
			break
		}
		w.work(ctx, b)
	}
	w.Log.Info("stopping")
	return nil
}

// open reads the configuration, takes the watcher lock and asks for the
// start-up resync; release gives the
// lock back.
func (w *Watcher) open() (release func(), err error) {
	w.setDefaults()
	cfg, err := config.Load(w.Host.Config)
	if err != nil {
		return nil, err
	}
	w.cfg = cfg
	release, err = w.Host.RunDir.HoldWatcher(w.Clock.Now())
	if err != nil {
		return nil, err
	}
	w.q = newQueue(w.Debounce, w.Clock)
	w.q.setTimer(w.cfg.Watch.ResyncInterval)
	w.live = manage.NewLive(w.Host.Libvirt)
	w.roams = map[string]map[string]string{}
	w.undeclared = map[string]map[string]bool{}
	w.warned = map[string]map[string]bool{}
	w.failed = map[string]string{}
	w.seen = map[string]manage.Sighting{}
	w.q.resync("start-up", false)
	return release, nil
}

// setDefaults fills in the tunables left zero.
func (w *Watcher) setDefaults() {
	if w.Clock == nil {
		w.Clock = SystemClock{}
	}
	if w.Debounce == 0 {
		w.Debounce = DefaultDebounce
	}
	if w.Backoff == 0 {
		w.Backoff = DefaultBackoff
	}
	if w.MaxAttempts == 0 {
		w.MaxAttempts = DefaultMaxAttempts
	}
}

// startSources runs every source in a goroutine of its own, emitting into
// the queue, until ctx ends or stop is called; stop returns once all of
// them have returned.
func (w *Watcher) startSources(ctx context.Context) (stop func()) {
	srcCtx, stopSources := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, s := range w.Sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.Run(srcCtx, w.emit)
		}()
	}
	return func() {
		stopSources()
		wg.Wait()
	}
}

// emit queues an event. It is safe to call from any goroutine.
func (w *Watcher) emit(e Event) {
	switch {
	case e.Resync || e.Reload:
		w.q.resync(e.Why, e.Reload)
	case e.Guest != "":
		w.q.add(key{name: e.Guest}, e.Why)
	case e.Port != "":
		w.q.add(key{port: true, name: e.Port}, e.Why)
	case e.PortIndex != 0:
		w.q.add(key{port: true, index: e.PortIndex}, e.Why)
	}
}

// work carries out one batch: one lock, one kernel snapshot, every guest
// of the batch. Cancelling ctx stops it between guests, never inside one.
func (w *Watcher) work(ctx context.Context, b batch) {
	if b.reload {
		w.reload()
	}
	log := w.Log
	if b.resync {
		log.Debugf("resync (%s)", strings.Join(b.why, ", "))
	}
	before := w.live.List()
	if err := w.live.Refresh(); err != nil {
		log.Errorf("reading running guests: %v", err)
		w.requeue(b)
		return
	}
	for _, n := range w.live.Notes {
		log.Debugf("note: %s", n)
	}
	w.prime()
	todo, ports := w.guestsOf(b)
	withSharers(todo, before, w.live.List())
	if len(todo) == 0 && len(ports) == 0 && !b.resync {
		w.done(nil, b.resync)
		return
	}
	if !w.cfg.Present || w.cfg.Empty() {
		log.Debugf("%s lists no bridges or networks: nothing is managed", w.cfg.Path)
		w.done(nil, b.resync)
		return
	}
	unlock, err := runstate.Lock(ctx, w.Host.Lock, w.Host.LockTimeout)
	if err != nil {
		if ctx.Err() == nil {
			log.Errorf("%v", err)
			w.requeue(b)
		}
		return
	}
	defer unlock()
	k, err := w.OpenKernel()
	if err != nil {
		log.Errorf("opening the kernel connection: %v", err)
		w.requeue(b)
		return
	}
	defer k.Close()
	st, err := manage.ReadState(w.Host, w.cfg, k, w.live, w.Clock.Now())
	if err != nil {
		log.Errorf("reading the kernel's devices: %v", err)
		w.requeue(b)
		return
	}
	st.Kernel.LookUp() // a busy bridge's FDB is not dumped for every batch
	if b.resync {
		w.clean(st, k)
	}
	w.portOwners(st.Kernel, ports, todo)
	done := w.reconcileAll(ctx, st, k, todo)
	w.publish(st.Kernel)
	w.done(done, b.resync)
}

// guestsOf turns a batch into the guests to reconcile (every running one
// on a resync), by name; a port whose guest the live XML does not name
// yet is returned in ports, for portOwners.
func (w *Watcher) guestsOf(b batch) (todo map[string]item, ports map[key]item) {
	todo = map[string]item{}
	for k, it := range b.items {
		if !k.port {
			todo[k.name] = merge(todo[k.name], it)
			continue
		}
		if k.name != "" {
			if g := w.live.Owner(k.name); g != "" {
				todo[g] = merge(todo[g], it)
				continue
			}
		}
		if ports == nil {
			ports = map[key]item{}
		}
		ports[k] = it
	}
	if b.resync {
		for _, g := range w.live.List() {
			todo[g.Name] = merge(todo[g.Name], item{why: "resync"})
		}
	}
	return todo, ports
}

// portOwners finds, in the kernel's snapshot, the ports guestsOf could
// not place: a port some guest's live XML names goes to that guest's
// item in todo, any other to unknownPort; a port gone is left to its
// guest's events or the resync.
func (w *Watcher) portOwners(snap *manage.Snapshot, ports map[key]item, todo map[string]item) {
	for k, it := range ports {
		l := snap.Device(k.name)
		if k.index != 0 {
			l = snap.DeviceByIndex(k.index)
		}
		if l == nil {
			continue
		}
		if g := w.live.Owner(l.Name); g != "" {
			todo[g] = merge(todo[g], it)
			continue
		}
		w.unknownPort(l, k, it)
	}
}

// reconcileAll reconciles the guests of todo in name order, until ctx
// ends, and returns those it brought in line. A guest no longer running
// is forgotten (its stop hook cleans up); one that fails is retried
// (failure).
func (w *Watcher) reconcileAll(ctx context.Context, st *manage.State, k model.Kernel, todo map[string]item) (done []string) {
	names := slices.Sorted(maps.Keys(todo))
	for i, name := range names {
		if ctx.Err() != nil {
			w.Log.Debugf("stopping with %d guests not reconciled", len(names)-i)
			break
		}
		gs := w.live.Get(name)
		if len(gs) == 0 {
			delete(w.roams, name)
			delete(w.undeclared, name)
			delete(w.warned, name)
			delete(w.failed, name)
			for k := range w.seen {
				if strings.HasSuffix(k, "/"+name) { // libvirt's names have no '/'
					delete(w.seen, k)
				}
			}
			continue
		}
		it := todo[name]
		var errs []error
		for _, g := range gs {
			if err := w.reconcile(st, k, g); err != nil {
				errs = append(errs, err)
			}
		}
		if len(errs) > 0 {
			w.failure(name, it, errors.Join(errs...))
			continue
		}
		done = append(done, name)
	}
	return done
}

// withSharers adds to todo the running guests that have a MAC of a guest
// in todo on one of their NICs (its own or a declared extra one), before
// or after the refresh: which of them keeps a duplicate MAC may change
// when one of them starts, stops or changes its ports (manage.DecideMAC).
func withSharers(todo map[string]item, lists ...[]*guest.Guest) {
	byMAC := map[string][]string{}
	macsOf := map[string][]string{}
	for _, list := range lists {
		for _, g := range list {
			for _, n := range g.NICs {
				for _, m := range g.Metadata(n).MACs() {
					byMAC[m] = append(byMAC[m], g.Name)
					macsOf[g.Name] = append(macsOf[g.Name], m)
				}
			}
		}
	}
	for name, it := range maps.Clone(todo) {
		for _, m := range macsOf[name] {
			for _, other := range byMAC[m] {
				if _, queued := todo[other]; !queued {
					todo[other] = item{why: "shares " + m + " with " + name, attempt: it.attempt}
				}
			}
		}
	}
}

func merge(a, b item) item {
	a.attempt = max(a.attempt, b.attempt)
	if a.why == "" {
		a.why = b.why
	}
	return a
}

func (w *Watcher) done(guests []string, resync bool) {
	if w.Processed != nil {
		w.Processed(guests, resync)
	}
}

// requeue puts a batch that could not be worked on back, after a backoff.
func (w *Watcher) requeue(b batch) {
	for k, it := range b.items {
		w.q.retry(k, it, w.Backoff)
	}
	if b.resync {
		w.q.resyncAfter(w.Backoff, "retry", b.reload)
	}
}

// reload reads the configuration again; a broken file keeps the old one.
// A new [watch] resync restarts the timer with it.
func (w *Watcher) reload() {
	cfg, err := config.Load(w.Host.Config)
	if err != nil {
		w.Log.Errorf("configuration not reloaded, keeping the previous one: %v", err)
		return
	}
	if cfg.Watch.ResyncInterval != w.cfg.Watch.ResyncInterval {
		w.q.setTimer(cfg.Watch.ResyncInterval)
	}
	w.cfg = cfg
	w.Log.Infof("configuration reloaded from %s", cfg.Path)
}

// clean deletes stale static entries, as reconcile does, at every resync.
func (w *Watcher) clean(st *manage.State, k model.Kernel) {
	defined, _, err := manage.ReadDefined(filepath.Join(w.Host.LibvirtEtc, "qemu"), filepath.Join(w.Host.LibvirtEtc, "lxc"))
	if err != nil {
		w.Log.Errorf("reading guest definitions: %v", err)
		return
	}
	st.Defined = defined
	res, err := manage.CleanStale(st, k, false)
	if err != nil {
		w.Log.Errorf("cleaning stale entries: %v", err)
		return
	}
	for _, e := range res.Entries {
		what := "stale " + e.Step.Entry.String()
		if e.Step.Kind == plan.SetFlags {
			what = e.Step.Flags.String() + " for " + e.Step.Port
		}
		switch {
		case e.Err != nil:
			w.Log.Errorf("bridge %s: %s %s: %v", e.Bridge, e.Action, what, e.Err)
		case e.Action == "left alone":
			w.Log.Debugf("bridge %s: left alone: static %s: %s", e.Bridge, e.Step.Entry, e.Why)
		default:
			w.Log.Infof("bridge %s: %s %s: %s", e.Bridge, e.Action, what, e.Why)
		}
	}
}

// unknownPort handles an event for a port no running guest names (yet).
// A tap or veth on a bridge may be a hotplugged NIC whose guest's live
// XML libvirt has not rewritten yet: look again after a backoff, a few
// times. Anything else is not a guest's port.
func (w *Watcher) unknownPort(l *model.Link, k key, it item) {
	if !l.IsGuestPort() || l.MasterIndex == 0 || it.attempt+1 >= w.MaxAttempts {
		return
	}
	w.q.retry(key{port: true, name: l.Name}, it, w.Backoff)
}

// failure retries a guest that could not be reconciled, and logs the
// failure once it gave up (once per distinct error: the next resync
// tries again).
func (w *Watcher) failure(name string, it item, err error) {
	if it.attempt+1 < w.MaxAttempts {
		w.Log.Debugf("guest %s: %v (retrying)", name, err)
		w.q.retry(key{name: name}, it, w.Backoff)
		return
	}
	msg := config.OneLine(err.Error())
	if w.failed[name] == msg {
		return
	}
	w.failed[name] = msg
	if w.cfg.OnError == config.Warn {
		w.Log.WithField("guest", name).Warnf("%s; its ports stay unmanaged", msg)
	} else {
		w.Log.WithField("guest", name).Errorf("%s", msg)
	}
}

// entryMode says which static entries a reconcile may write.
type entryMode int

func (m entryMode) String() string {
	return [...]string{keepRoams: "changed", allEntries: "started", noEntries: "incoming"}[m]
}

const (
	// keepRoams: write missing entries; leave roamed ones where they are.
	keepRoams entryMode = iota
	// allEntries: write every entry on the guest's own taps.
	allEntries
	// noEntries: the guest is paused for an incoming migration: its ports
	// stay as its "start begin" left them (plan.Incoming: flooding off,
	// learning on), and its entries are written when it resumes here.
	noEntries
)

// reconcile brings one guest's ports to what its start leaves.
func (w *Watcher) reconcile(st *manage.State, k model.Kernel, g *guest.Guest) error {
	log := w.Log.WithField("guest", g.Name)
	mode, why, clearMark := w.entryMode(g, log)
	var claimed map[string]string
	if mode != noEntries {
		claimed = w.follow(st, g, log)
	}
	var roamed []manage.Roam
	gr := manage.ReconcileGuest(st, k, g, false, func(p *plan.Plan, v plan.View) (*plan.Plan, error) {
		if mode == noEntries {
			// What its "start begin" did, learning on included: the
			// guest's announcement at the resume must be learned here
			// before the watcher reads that it runs.
			return plan.Incoming(p, v, true)
		}
		var err error
		roamed, err = st.KeepRoams(g, p, mode == allEntries)
		return p, err
	})
	if gr.Err != nil {
		return gr.Err
	}
	delete(w.failed, g.Name)
	w.seen[seenKey(g)] = manage.Sight(g)
	for _, s := range gr.Changes {
		log.Infof("%s: %s", mode, s)
	}
	w.warnOnce(g.Name, gr.Warnings, log)
	w.reportRoams(g, roamed, log)
	w.reportUndeclared(st, g, claimed, log)
	if mode == noEntries && len(gr.Changes) == 0 {
		log.Debugf("%s", why)
	}
	if clearMark {
		if err := w.Host.RunDir.ClearMark(g.Name); err != nil {
			log.Warnf("%v", err)
		} else {
			log.Infof("%s: mark cleared", why)
		}
	}
	return nil
}

// entryMode says which entries a reconcile of g writes, from what its live
// XML says now and said when it was last reconciled: all of them when it
// started or resumed here since (manage.Started) or has just arrived by
// live migration, none while it is paused as a live migration's
// destination, only missing ones otherwise (manage.Migration). clearMark
// is set when its migration mark is to go: the migration is over here, or
// the mark is stale; why says which.
func (w *Watcher) entryMode(g *guest.Guest, log *logrus.Entry) (mode entryMode, why string, clearMark bool) {
	mode = keepRoams
	if prev, seen := w.seen[seenKey(g)]; manage.Started(seenOrNil(prev, seen), g) {
		mode = allEntries
	}
	mark, err := manage.ReadMark(w.Host.RunDir, g.Name)
	if err != nil {
		log.Warnf("%v: ignoring it", err)
	}
	a, clearMark, why := manage.Migration(mark, g, w.Clock.Now())
	switch a {
	case manage.Arriving:
		mode = noEntries
	case manage.Arrived:
		mode = allEntries
	}
	return mode, why, clearMark
}

// prime records, the first time the running guests are read, what each
// one's live XML says: a guest that runs when the watcher starts did not
// start then (its hook gave it its entries).
func (w *Watcher) prime() {
	if w.primed {
		return
	}
	for _, g := range w.live.List() {
		w.seen[seenKey(g)] = manage.Sight(g)
	}
	w.primed = true
}

// seenKey names a running guest among those the watcher has seen: a QEMU
// guest and a container may share a name.
func seenKey(g *guest.Guest) string { return g.Type + "/" + g.Name }

func seenOrNil(s manage.Sighting, ok bool) *manage.Sighting {
	if !ok {
		return nil
	}
	return &s
}

// reportRoams logs each roam once, and forgets those that ended: as
// information on the source of a live migration (its MACs move to the
// uplink when the destination resumes the guest and announces it), as a
// warning otherwise.
func (w *Watcher) reportRoams(g *guest.Guest, roamed []manage.Roam, log *logrus.Entry) {
	guest := g.Name
	now := map[string]string{}
	for _, r := range roamed {
		s, on := r.Step, r.Decision.Roamed.Port
		now[s.MAC] = on
		if w.roams[guest][s.MAC] == on {
			continue
		}
		if g.OutgoingMigration {
			log.Infof("%s: %s", s.NIC, r.Decision.Why)
			continue
		}
		log.Warnf("%s: %s", s.NIC, r.Decision.Why)
	}
	if len(now) == 0 {
		delete(w.roams, guest)
	} else {
		w.roams[guest] = now
	}
}

// follow authorises, under undeclared_macs = "follow", the MACs g's NICs
// send from undeclared (manage.State.Follow): it records them in the run
// directory and gives them to g, whose plan then writes their static
// entries; a NIC past follow_max is recorded full, and its plan turns MAB
// off. It logs what it followed and each overflow (once: a full NIC
// follows nothing more), and returns the refusals of claimed MACs, by
// "port MAC", for reportUndeclared to log once. Nothing is followed when
// the record cannot be written.
func (w *Watcher) follow(st *manage.State, g *guest.Guest, log *logrus.Entry) map[string]string {
	next, outs, changed, err := st.Follow(g)
	if err != nil {
		log.Debugf("following undeclared MACs: %v", err)
		return nil
	}
	if changed {
		if err := w.Host.RunDir.PutFollowed(next); err != nil {
			log.Warnf("%v: following no MAC", err)
			return nil
		}
		for _, n := range g.NICs {
			if n.BadMAC == nil {
				fn := next.NICs[n.MAC]
				g.SetFollowed(n.MAC, fn.MACs, fn.Full)
			}
		}
	}
	claimed := map[string]string{}
	for _, o := range outs {
		switch o.Kind {
		case manage.Claimed:
			claimed[o.Port+" "+o.MAC] = o.String()
		case manage.Overflow:
			log.Warnf("guest %s %s", g.Name, o)
		default:
			log.Infof("guest %s %s", g.Name, o)
		}
	}
	return claimed
}

// reportUndeclared logs, once, each undeclared MAC a guest's NIC sends
// from: a locked entry on the NIC's port where it has MAB (undeclared_macs
// = "report", or "follow" and claimed elsewhere: claimed says why, by
// "port MAC"), which the kernel makes for a source MAC the port drops. An
// entry that is gone (aged out, declared, MAB off) is forgotten, so that
// its return is logged again. A port that cannot be read is left for the
// next reconcile.
func (w *Watcher) reportUndeclared(st *manage.State, g *guest.Guest, claimed map[string]string, log *logrus.Entry) {
	now := map[string]bool{}
	for _, nic := range g.NICs {
		port, md := st.Kernel.Device(nic.Target), g.Metadata(nic)
		if nic.Target == "" || port == nil || !port.Flags.Mab || !g.Manages(nic) || md.FollowFull {
			continue // a full NIC's overflow was logged, and MAB is off now
		}
		br := st.Kernel.DeviceByIndex(port.MasterIndex)
		if br == nil {
			continue
		}
		entries, err := st.Kernel.PortEntries(br, port)
		if err != nil {
			log.Debugf("%s: reading the FDB entries of %s: %v", nic.Label(), port.Name, err)
			maps.Copy(now, w.undeclared[g.Name])
			continue
		}
		for _, e := range entries {
			if !e.Locked() || e.PortIndex != port.Index || slices.Contains(md.MACs(), e.MAC) {
				continue // followed just now: its static entry replaced it
			}
			k := nic.Label() + " " + port.Name + " " + e.MAC
			switch {
			case now[k] || w.undeclared[g.Name][k]:
			case claimed[port.Name+" "+e.MAC] != "":
				log.Warnf("guest %s %s", g.Name, claimed[port.Name+" "+e.MAC])
			default:
				log.Infof("guest %s NIC %s on %s sends from undeclared MAC %s: the port drops its frames from that MAC (undeclared_macs = \"report\"; declare it as an extra MAC if it is the guest's)",
					g.Name, nic.Label(), port.Name, e.MAC)
			}
			now[k] = true
		}
	}
	if len(now) == 0 {
		delete(w.undeclared, g.Name)
	} else {
		w.undeclared[g.Name] = now
	}
}

// warnOnce logs each of a guest's plan warnings (an option the kernel
// cannot honour: no MAB for undeclared_macs = "report", no locked ports
// under on_error = "warn", …) once, not at every resync, and again only
// after a reconcile without it.
func (w *Watcher) warnOnce(guest string, warnings []string, log *logrus.Entry) {
	now := map[string]bool{}
	for _, warn := range warnings {
		if !w.warned[guest][warn] && !now[warn] {
			log.Warn(warn)
		}
		now[warn] = true
	}
	if len(now) == 0 {
		delete(w.warned, guest)
	} else {
		w.warned[guest] = now
	}
}

package manage

import (
	"fmt"
	"time"

	"github.com/fdbhook/fdbhook/pkg/config"
	"github.com/fdbhook/fdbhook/pkg/guest"
	"github.com/fdbhook/fdbhook/pkg/libvirt"
	"github.com/fdbhook/fdbhook/pkg/model"
	"github.com/fdbhook/fdbhook/pkg/plan"
	"github.com/fdbhook/fdbhook/pkg/runstate"
)

// HostView joins a kernel and libvirt's files into what the planner reads
// (plan.View) and what proves a container's veths its own (Prover).
type HostView struct {
	model.Reader
	*libvirt.Files
}

// Prover proves which veths are a running container's (Container).
type Prover interface {
	Container(name string) plan.Container
}

// Container proves, from libvirt's live state (its init process) and the
// kernel (the id the host gives that process's network namespace), which
// veths are running container name's own. A proof that cannot be made (the
// live state cannot be read, the init is not known yet or gone) says why,
// and every veth of the container is then refused with that reason: a
// container without managed NICs still starts as before.
func (v HostView) Container(name string) plan.Container {
	pid, why, err := v.Files.ContainerInit(name)
	switch {
	case err != nil:
		return plan.Container{NetnsID: -1, Unknown: fmt.Sprintf("reading libvirt's live state of the container: %v", err)}
	case pid == 0:
		return plan.Container{NetnsID: -1, Unknown: why}
	}
	id, err := v.Reader.NetnsIDOfPid(pid)
	if err != nil {
		return plan.Container{NetnsID: -1, Unknown: fmt.Sprintf("container init (pid %d): %v", pid, err)}
	}
	return plan.Container{InitPid: pid, NetnsID: id}
}

// Proofs are proofs made before, by container name; a container without
// one is not known to run.
type Proofs map[string]plan.Container

func (p Proofs) Container(name string) plan.Container {
	if ct, ok := p[name]; ok {
		return ct
	}
	return plan.Container{NetnsID: -1, Unknown: "no init process known for container " + name}
}

// IsContainer reports whether g is a container of libvirt's LXC driver:
// its XML says so (<domain type='lxc'>), or its live XML was read from the
// LXC driver's directory (Live marks those).
func IsContainer(g *guest.Guest) bool { return g.Type == "lxc" }

// StartPlan plans g's start (and reconnect, attach, and what reconcile and
// the watcher give a running guest) with the planner its driver needs:
// the one choice of planner. A container's NICs are veths proved its own
// (plan.StartContainer, with the proof from proofs); a QEMU guest's are
// taps (plan.Start).
func StartPlan(cfg *config.Config, g *guest.Guest, v plan.View, proofs Prover) (*plan.Plan, error) {
	if !IsContainer(g) {
		return plan.Start(cfg, g, v)
	}
	return plan.StartContainer(cfg, g, v, proofs.Container(g.Name))
}

// Prove proves each running container's veths (Container), once, for
// code that plans many guests from one snapshot.
func Prove(running []*guest.Guest, p Prover) Proofs {
	out := Proofs{}
	for _, g := range running {
		if IsContainer(g) {
			out[g.Name] = p.Container(g.Name)
		}
	}
	return out
}

// startPlan plans a running guest's start as its hook does (StartPlan), a
// container with the state's proof.
func (st *State) startPlan(g *guest.Guest, v plan.View) (*plan.Plan, error) {
	return StartPlan(st.Config, g, v, st.Containers)
}

// Arrival is what a live migration to this host asks of a guest's ports.
type Arrival int

const (
	// NotArriving: no live migration to this host concerns the guest; its
	// ports get its full start plan.
	NotArriving Arrival = iota
	// Arriving: the guest is, or is about to be, paused here as a live
	// migration's destination while it still runs on the source; its
	// ports get plan.Incoming (flooding off, learning on, no entries) and
	// its entries wait for the resume.
	Arriving
	// Arrived: the migration finished here (the guest runs); its ports
	// get the full start plan, entries written back on its own taps.
	Arrived
)

func (a Arrival) String() string {
	switch a {
	case Arriving:
		return "arriving"
	case Arrived:
		return "arrived"
	}
	return "not arriving"
}

// Migration is the migration decision: a pure function of the guest's
// migration mark (nil: none), its XML and the time. g is either the
// domain XML libvirt hands a hook (a plain <domain>, State empty: the
// guest is about to start) or a running guest's live XML (<domstatus>).
//
//   - At a start, the guest is arriving when "migrate begin" marked it
//     (phase incoming) no more than 10 minutes ago (runstate.MaxPrepare)
//     and the mark names the same guest (UUID).
//   - A running guest's live XML decides with the mark: paused here with a
//     mark of any phase, or without one while the live XML says it is a
//     migration's destination, it is arriving; running with a mark, it
//     has arrived.
//
// Any other mark is stale: clearMark says when a mark is to be removed
// (stale, or the migration is over here), and why says so in words.
func Migration(m *runstate.Mark, g *guest.Guest, now time.Time) (a Arrival, clearMark bool, why string) {
	if m != nil && m.UUID != "" && g.UUID != "" && m.UUID != g.UUID {
		a, _, why = Migration(nil, g, now)
		return a, true, fmt.Sprintf("a stale migration mark (of another guest %s, %s)", m.Guest, m.UUID)
	}
	switch {
	case g.State == "" && m == nil:
		return NotArriving, false, ""
	case g.State == "":
		if m.Phase == runstate.Incoming && m.Fresh(now) {
			return Arriving, false, fmt.Sprintf("incoming live migration (marked %s)", m.Since.Format(time.RFC3339))
		}
		return NotArriving, true, fmt.Sprintf("a stale migration mark (%s since %s)", m.Phase, m.Since.Format(time.RFC3339))
	case g.State == "running" && m != nil:
		return Arrived, true, "incoming live migration finished: the guest runs here"
	case g.State == "running":
		return NotArriving, false, ""
	case m != nil:
		return Arriving, false, fmt.Sprintf("incoming live migration (%s since %s): entries are written when it resumes here",
			m.Phase, m.Since.Format(time.RFC3339))
	case g.IncomingMigration:
		return Arriving, false, "paused for an incoming live migration (libvirt's live XML): its entries are due when it resumes here"
	}
	return NotArriving, false, ""
}

// ReadMark reads guest name's migration mark in d; nil when it has none.
func ReadMark(d runstate.Dir, name string) (*runstate.Mark, error) {
	m, ok, err := d.GetMark(name)
	if err != nil || !ok {
		return nil, err
	}
	return &m, nil
}

// Arrivals decides (Migration) for each running guest of live whether it
// is arriving by live migration, with its mark in d, at now: the guests
// whose ports wait for their resume here. A mark that cannot be read
// counts as none.
func Arrivals(running []*guest.Guest, d runstate.Dir, now time.Time) map[string]bool {
	out := map[string]bool{}
	for _, g := range running {
		mark, _ := ReadMark(d, g.Name)
		if a, _, _ := Migration(mark, g, now); a == Arriving {
			out[g.Name] = true
		}
	}
	return out
}

// Sighting is what a running guest's live XML said when it was read.
type Sighting struct {
	State, Reason string
	Pid           int
}

// Sight is what g's live XML says now.
func Sight(g *guest.Guest) Sighting { return Sighting{State: g.State, Reason: g.Reason, Pid: g.Pid} }

// Started is the decision "did this guest start or resume here since it
// was last seen?", a pure function of what its live XML said then (prev;
// nil: it was not running) and says now (g): it runs now, and it did not
// then, or its process (another start) or its state's reason (paused and
// resumed in between) changed. Such a guest's entries are written back on
// its own ports, also where they roamed while it was not running here;
// while it keeps running, a roam means another port sent its MAC, and the
// entry is left where it went.
func Started(prev *Sighting, g *guest.Guest) bool {
	if g.State != "running" {
		return false
	}
	return prev == nil || prev.State != "running" || prev.Pid != g.Pid || prev.Reason != g.Reason
}

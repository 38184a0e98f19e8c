package manage

import (
	"fmt"

	"github.com/fdbhook/fdbhook/pkg/config"
	"github.com/fdbhook/fdbhook/pkg/guest"
	"github.com/fdbhook/fdbhook/pkg/libvirt"
	"github.com/fdbhook/fdbhook/pkg/model"
	"github.com/fdbhook/fdbhook/pkg/plan"
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

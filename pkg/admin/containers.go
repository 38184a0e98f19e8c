package admin

import (
	"github.com/fdbhook/fdbhook/pkg/guest"
	"github.com/fdbhook/fdbhook/pkg/plan"
)

// startPlan plans a running guest's start as its hook does: a container of
// libvirt's LXC driver with the proof of which veths are its own (a
// container without one has every veth refused), a QEMU guest with taps.
func (st *State) startPlan(g *guest.Guest, v plan.View) (*plan.Plan, error) {
	if g.Type != "lxc" {
		return plan.Start(st.Config, g, v)
	}
	ct, ok := st.Containers[g.Name]
	if !ok {
		ct = plan.Container{NetnsID: -1, Unknown: "no init process known for container " + g.Name}
	}
	return plan.StartContainer(st.Config, g, v, ct)
}

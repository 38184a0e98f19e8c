package admin

import (
	"github.com/fdbhook/fdbhook/pkg/guest"
	"github.com/fdbhook/fdbhook/pkg/manage"
	"github.com/fdbhook/fdbhook/pkg/plan"
)

// startPlan plans a running guest's start as its hook does
// (manage.StartPlan), a container with the proof of the state.
func (st *State) startPlan(g *guest.Guest, v plan.View) (*plan.Plan, error) {
	return manage.StartPlan(st.Config, g, v, st.Containers)
}

package watch

import (
	"github.com/fdbhook/fdbhook/pkg/guest"
	"github.com/fdbhook/fdbhook/pkg/hook"
	"github.com/fdbhook/fdbhook/pkg/libvirt"
	"github.com/fdbhook/fdbhook/pkg/model"
	"github.com/fdbhook/fdbhook/pkg/plan"
)

// containers proves, for each running container of libvirt's LXC driver,
// which veths are its own, as the lxc hook does. A container whose proof
// cannot be read has every veth refused (and retried like any refusal).
func (w *Watcher) containers(k model.Reader) map[string]plan.Container {
	var running []*guest.Guest
	for _, g := range w.live.list() {
		if g.Type == "lxc" {
			running = append(running, g)
		}
	}
	return hook.Containers(running, hook.PlanView{Reader: k, Files: libvirt.New(w.Libvirt)})
}

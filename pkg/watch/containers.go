package watch

import (
	"github.com/fdbhook/fdbhook/pkg/libvirt"
	"github.com/fdbhook/fdbhook/pkg/manage"
	"github.com/fdbhook/fdbhook/pkg/model"
)

// containers proves, for each running container of libvirt's LXC driver,
// which veths are its own, as the lxc hook does. A container whose proof
// cannot be read has every veth refused (and retried like any refusal).
func (w *Watcher) containers(k model.Reader) manage.Proofs {
	return manage.Prove(w.live.List(), manage.HostView{Reader: k, Files: libvirt.New(w.Libvirt)})
}

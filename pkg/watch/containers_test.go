package watch

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fdbhook/fdbhook/pkg/kernel/kerneltest"
	"github.com/fdbhook/fdbhook/test/lab"
)

// container writes a running container's live state as libvirt's LXC
// driver does (<init pid> inside <domstatus>); nics are "bridge:veth:mac".
func (r *rig) container(name string, initPid int, nics ...string) {
	r.t.Helper()
	d := lab.Domain{Name: name, Type: "lxc"}
	for _, n := range nics {
		f := strings.SplitN(n, ":", 3)
		d.NICs = append(d.NICs, lab.NIC{Bridge: f[0], Target: f[1], MAC: f[2]})
	}
	dir := filepath.Join(r.dir, "run/lxc")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		r.t.Fatal(err)
	}
	live := d.Live(lab.Status{Pid: initPid - 1, Init: initPid})
	if err := os.WriteFile(filepath.Join(dir, name+".xml"), []byte(live), 0o600); err != nil {
		r.t.Fatal(err)
	}
}

// TestContainers: the watcher manages a running container's veth whose
// peer lives in its init's namespace, heals it after drift, and leaves a
// container's veth whose peer is in the host's namespace alone.
func TestContainers(t *testing.T) {
	r := newRig(t, twoBridges)
	own := kerneltest.Veth("vnetc1", "br0", kerneltest.Learning)
	own.PeerNetnsID = 3
	r.k.Add(own)
	stray := kerneltest.Veth("vnetc2", "br0", kerneltest.Learning)
	stray.PeerNetnsID = -1
	r.k.Add(stray)
	r.container("c1", 501, "br0:vnetc1:"+mac1)
	r.container("c2", 601, "br0:vnetc2:"+mac2)
	r.k.SetNetnsID(501, 3)
	r.k.SetNetnsID(601, 4)
	r.start()
	r.waitFor("c1's veth managed", r.managed("vnetc1", mac1))

	r.k.SetFlags("vnetc1", kerneltest.Learning)
	r.emit(Event{Port: "vnetc1", Why: "test: learning on"})
	r.waitFor("learning and flood off again", r.managed("vnetc1", mac1))

	r.settle()
	if f, _ := r.k.Flags("vnetc2"); f != kerneltest.Learning || len(r.k.Static(mac2)) != 0 {
		t.Errorf("vnetc2, whose peer is in the host's namespace, was changed: %+v, entries %v", f, r.k.Static(mac2))
	}
	if !strings.Contains(r.log.String(), "veth vnetc2 has its peer in the host's network namespace") {
		t.Errorf("the refusal of c2 is not logged:\n%s", r.log.String())
	}
}

// TestGuestAndContainerOfOneName: libvirt's QEMU and LXC drivers name
// their domains apart, so a guest and a container may share a name. The
// watcher reconciles both, and heals the container's veth after drift.
func TestGuestAndContainerOfOneName(t *testing.T) {
	r := newRig(t, twoBridges)
	r.k.Add(kerneltest.Tap("vnet1", "br0", kerneltest.Learning))
	r.guest("web", "running", "br0:vnet1:"+mac1)
	own := kerneltest.Veth("vnetc1", "br0", kerneltest.Learning)
	own.PeerNetnsID = 3
	r.k.Add(own)
	r.container("web", 501, "br0:vnetc1:"+mac2)
	r.k.SetNetnsID(501, 3)
	r.start()
	r.waitFor("the guest's tap managed", r.managed("vnet1", mac1))
	r.waitFor("the container's veth managed", r.managed("vnetc1", mac2))

	r.k.SetFlags("vnetc1", kerneltest.Learning)
	r.emit(Event{Port: "vnetc1", Why: "test: learning on"})
	r.waitFor("the container's veth managed again", r.managed("vnetc1", mac2))
	if !r.managed("vnet1", mac1)() {
		t.Errorf("the guest's tap lost its management")
	}
}

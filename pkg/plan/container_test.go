package plan

import (
	"strings"
	"testing"

	"github.com/fdbhook/fdbhook/pkg/config"
	"github.com/fdbhook/fdbhook/pkg/guest"
	"github.com/fdbhook/fdbhook/pkg/kernel/kerneltest"
	"github.com/fdbhook/fdbhook/test/lab"
)

// containerHost: bridge fdbtlxbr0 with the captured container's veths
// (peers in namespace id 0, the container's), a veth uplink whose peer is
// in the host's namespace and one whose peer is in namespace id 5, on the
// shared fake kernel.
func containerHost() *fakeView {
	k := kerneltest.New()
	k.Add(kerneltest.Bridge("fdbtlxbr0"))
	for _, v := range []struct {
		name string
		peer int
	}{{"fdbtlxv1a", 0}, {"vnet1", 0}, {"fdbtlxup0", -1}, {"fdbtlxot0", 5}} {
		l := kerneltest.Veth(v.name, "fdbtlxbr0", kerneltest.Learning)
		l.PeerNetnsID = v.peer
		k.Add(l)
	}
	return &fakeView{Kernel: k, owners: map[string]string{}}
}

func containerXML(t *testing.T, targets ...string) *guest.Guest {
	t.Helper()
	data := lab.Recorded(t, "libvirt-9.0-lxc", "lxc-fdbtlxc1-started-begin.xml")
	s := string(data)
	for i, old := range []string{"<target dev='fdbtlxv1a'/>", "<target dev='vnet1'/>"} {
		if i < len(targets) {
			s = strings.Replace(s, old, "<target dev='"+targets[i]+"'/>", 1)
		}
	}
	g, err := guest.Parse([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// TestStartContainer: the container's veths are managed like taps; a veth
// whose peer is elsewhere, a tap, or any veth while the init is unknown,
// is refused with the reason; the qemu path still refuses every veth.
func TestStartContainer(t *testing.T) {
	cfg := &config.Config{Present: true, Bridges: []string{"fdbtlxbr0"}}
	ct := Container{InitPid: 31023, NetnsID: 0}
	for _, tc := range []struct {
		name    string
		targets []string
		ct      *Container
		steps   int
		refusal string
	}{
		{name: "both veths the container's", ct: &ct, steps: 4},
		{name: "uplink named as target", targets: []string{"fdbtlxup0"}, ct: &ct, steps: 2,
			refusal: "veth fdbtlxup0 has its peer in the host's network namespace, not in the container's (init pid 31023)"},
		{name: "another namespace's veth", targets: []string{"fdbtlxv1a", "fdbtlxot0"}, ct: &ct, steps: 2,
			refusal: "veth fdbtlxot0 has its peer in network namespace id 5, not in the container's (init pid 31023)"},
		{name: "init unknown", ct: &Container{NetnsID: -1, Unknown: "no live state"}, steps: 0,
			refusal: "cannot prove veth fdbtlxv1a is the container's: no live state"},
		{name: "container's namespace without id", ct: &Container{InitPid: 31023, NetnsID: -1}, steps: 0,
			refusal: "veth fdbtlxv1a has its peer in network namespace id 0, not in the container's"},
		{name: "qemu path", steps: 0, refusal: "fdbtlxv1a is a veth device, not a guest tap"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := containerXML(t, tc.targets...)
			var p *Plan
			var err error
			if tc.ct != nil {
				p, err = StartContainer(cfg, g, containerHost(), *tc.ct)
			} else {
				p, err = Start(cfg, g, containerHost())
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Steps) != tc.steps {
				t.Errorf("%d steps, want %d:\n%s", len(p.Steps), tc.steps, p.Format())
			}
			var refusals []string
			for _, r := range p.Refusals {
				refusals = append(refusals, r.Error())
			}
			if got := strings.Join(refusals, "; "); (tc.refusal == "") != (got == "") || !strings.Contains(got, tc.refusal) {
				t.Errorf("refusals %q, want one with %q", got, tc.refusal)
			}
			for _, s := range p.Steps {
				if s.Port != "fdbtlxv1a" && s.Port != "vnet1" {
					t.Errorf("step on %s, which is not the container's: %s", s.Port, s)
				}
			}
		})
	}
}

package manage

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fdbhook/fdbhook/pkg/config"
	"github.com/fdbhook/fdbhook/pkg/guest"
	"github.com/fdbhook/fdbhook/pkg/kernel/kerneltest"
	"github.com/fdbhook/fdbhook/pkg/libvirt"
	"github.com/fdbhook/fdbhook/test/lab"
)

func lxcFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "libvirt-9.0-lxc", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// lxcHost is libvirt's LXC run directory with container fdbtlxc1 (init
// 31023, in the network namespace the host gives id 0) and fdbtlxc2,
// whose init (31099) is gone when the kernel is asked: it is stopping.
func lxcHost(t *testing.T) (HostView, *kerneltest.Kernel) {
	t.Helper()
	dir := t.TempDir()
	lxcDir := filepath.Join(dir, "lxc")
	os.MkdirAll(lxcDir, 0o755)
	live := lxcFixture(t, "run-lxc-fdbtlxc1-at-reconnect-begin.xml")
	os.WriteFile(filepath.Join(lxcDir, "fdbtlxc1.xml"), live, 0o644)
	gone := bytes.Replace(bytes.ReplaceAll(live, []byte("fdbtlxc1"), []byte("fdbtlxc2")), []byte("<init pid='31023'"), []byte("<init pid='31099'"), 1)
	if bytes.Equal(gone, live) || !bytes.Contains(gone, []byte("<init pid='31099'")) {
		t.Fatal("the fixture changed: no <init pid='31023'> to rewrite")
	}
	os.WriteFile(filepath.Join(lxcDir, "fdbtlxc2.xml"), gone, 0o644)
	k := kerneltest.New()
	k.Add(kerneltest.Bridge("fdbtlxbr0"))
	veth := kerneltest.Veth("fdbtlxv1a", "fdbtlxbr0", kerneltest.Learning)
	veth.PeerNetnsID = 0
	k.Add(veth)
	k.Add(kerneltest.Tap("vnet7", "fdbtlxbr0", kerneltest.Learning))
	k.SetNetnsID(31023, 0)
	k.FailWith(func(c kerneltest.Call) error {
		if c.Method == "NetnsIDOfPid" && c.Index == 31099 {
			return fmt.Errorf("network namespace of pid 31099: %w", os.ErrNotExist)
		}
		return nil
	})
	return HostView{Reader: k, Files: libvirt.New(libvirt.Paths{LxcRunDir: lxcDir, ProcDir: filepath.Join(dir, "proc")})}, k
}

// TestContainersOneStopping: a container whose init is gone when the
// kernel is asked (it is stopping) gets no proof and the reason, so its
// veths are refused with it; it fails neither the others' proof nor the
// whole report; a container not running at all has none either.
func TestContainersOneStopping(t *testing.T) {
	v, _ := lxcHost(t)
	got := Prove([]*guest.Guest{{Name: "fdbtlxc1", Type: "lxc"}, {Name: "fdbtlxc2", Type: "lxc"}, {Name: "vm1", Type: "kvm"}}, v)
	if ct := got.Container("fdbtlxc1"); ct.InitPid != 31023 || ct.NetnsID != 0 || ct.Unknown != "" {
		t.Errorf("fdbtlxc1: %+v, want init 31023 in namespace id 0", ct)
	}
	if ct := got.Container("fdbtlxc2"); ct.NetnsID != -1 || !strings.Contains(ct.Unknown, "pid 31099") {
		t.Errorf("fdbtlxc2 (init gone): %+v, want no namespace id and the reason", ct)
	}
	if _, proved := got["vm1"]; proved || len(got) != 2 {
		t.Errorf("proofs %v: a QEMU guest proved as a container", got)
	}
	if ct := v.Container("fdbtlxc9"); ct.NetnsID != -1 || ct.Unknown == "" {
		t.Errorf("a container not running: %+v, want no proof and the reason", ct)
	}
}

// TestStartPlanChoosesThePlanner: a container's NICs must be veths proved
// its own, a QEMU guest's taps: the same XML is planned apart by its type.
func TestStartPlanChoosesThePlanner(t *testing.T) {
	v, _ := lxcHost(t)
	cfg := &config.Config{Present: true, Bridges: []string{"fdbtlxbr0"}}
	for _, tc := range []struct {
		typ, target string
		managed     bool
	}{
		{"lxc", "fdbtlxv1a", true}, {"lxc", "vnet7", false},
		{"kvm", "vnet7", true}, {"kvm", "fdbtlxv1a", false},
	} {
		d := lab.Domain{Name: "fdbtlxc1", Type: tc.typ, NICs: lab.BridgeNICs("fdbtlxbr0", tc.target+"/52:54:00:4c:58:01")}
		g, err := guest.Parse([]byte(d.XML()))
		if err != nil {
			t.Fatal(err)
		}
		p, err := StartPlan(cfg, g, v, v)
		if err != nil {
			t.Fatalf("%s on %s: %v", tc.typ, tc.target, err)
		}
		if managed := len(p.Steps) > 0 && len(p.Refusals) == 0; managed != tc.managed {
			t.Errorf("%s guest on %s: steps %v refusals %v; want managed %v", tc.typ, tc.target, p.Steps, p.Refusals, tc.managed)
		}
	}
}

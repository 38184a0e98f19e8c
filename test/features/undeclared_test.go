package features

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/fdbhook/fdbhook/pkg/model"
	testlab "github.com/fdbhook/fdbhook/test/lab"
)

// nestedMAC is a MAC the guest sends from without declaring it: a nested
// guest's, or a container's on macvlan.
const nestedMAC = "02:00:00:fd:b0:77"

// TestUndeclaredMACDefaultUnchanged: without undeclared_macs the start is
// today's: tap0 gets learning off flood off, unlocked, no MAB; a frame
// from an undeclared MAC still leaves the bridge and leaves no entry; and
// status lists no undeclared MACs.
func TestUndeclaredMACDefaultUnchanged(t *testing.T) {
	l := newLab(t)
	config := "bridges = [\"br0\"]\n"
	l.start(config, "")
	if f := l.portFlagsMab("tap0"); f != (model.Flags{}) {
		t.Errorf("tap0 is %s, want learning off flood off locked off, no MAB", f.WordsMab(true, true))
	}
	want := []string{guestMAC, nestedMAC}
	slices.Sort(want)
	if got := l.guestSends(guestMAC, nestedMAC); !slices.Equal(got, want) {
		t.Errorf("frames that left the bridge came from %v, want %v", got, want)
	}
	if e := l.entryOf(guestMAC); e != (entry{Port: "tap0", Static: true}) {
		t.Errorf("entry for %s = %+v, want static on tap0", guestMAC, e)
	}
	if e := l.entryOf(nestedMAC); e.Port != "" {
		t.Errorf("entry for %s = %+v, want none (tap0 does not learn)", nestedMAC, e)
	}
	if got := l.undeclared(config); len(got) != 0 {
		t.Errorf("status lists undeclared MACs %v, want none", got)
	}
}

// TestUndeclaredMACReported: with undeclared_macs = "report" on a kernel
// with MAC Authentication Bypass, tap0 reads back learning on flood off
// locked on mab on; a frame from an undeclared MAC is dropped and leaves a
// locked entry on tap0, while the guest's own MAC passes; and status (the
// fdbhook binary) names the guest, the NIC and the MAC, without a problem.
func TestUndeclaredMACReported(t *testing.T) {
	l := newLab(t)
	config := "bridges = [\"br0\"]\n[bridge.br0]\nundeclared_macs = \"report\"\n"
	l.start(config, "")
	if f := l.portFlagsMab("tap0"); f != model.Reporting {
		t.Errorf("tap0 is %s, want %s", f.WordsMab(true, true), model.Reporting.WordsMab(true, true))
	}
	if got := l.guestSends(guestMAC, nestedMAC); !slices.Equal(got, []string{guestMAC}) {
		t.Errorf("frames that left the bridge came from %v, want only %s (the undeclared %s dropped)", got, guestMAC, nestedMAC)
	}
	if e := l.entryOf(guestMAC); e != (entry{Port: "tap0", Static: true}) {
		t.Errorf("entry for %s = %+v, want static on tap0", guestMAC, e)
	}
	if e := l.lockedEntry(nestedMAC); e == nil || e.Port != "tap0" || !e.Locked() {
		t.Errorf("entry for %s = %+v, want a locked one on tap0", nestedMAC, e)
	} else {
		t.Logf("the kernel's locked entry: %s, last updated %s ago", e, e.Updated)
	}
	got := l.undeclared(config)
	if want := []string{"fdbt-g1 net0 tap0 " + nestedMAC}; !slices.Equal(got, want) {
		t.Errorf("status lists undeclared MACs %v, want %v", got, want)
	}
}

// portFlagsMab is portFlags (the project's netlink code checked against
// the library and iproute2), whose MAB flag only the project's code reads
// (Debian 12's iproute2 6.1 does not know it): the frames the tests send
// are its independent witness. It skips the test on a kernel without MAB.
func (l *lab) portFlagsMab(port string) model.Flags {
	l.t.Helper()
	link := l.portLink(port)
	if !link.MabCapable {
		l.t.Skipf("this kernel reports no IFLA_BRPORT_MAB for %s (MAC Authentication Bypass needs Linux 6.2+)", port)
	}
	return link.Flags
}

// lockedEntry returns the VLAN-0 entry for mac on br0 as the project's
// netlink code reads it, nil when there is none, and fails the test when
// the netlink library's own FDB dump disagrees on whether it is locked
// (Debian 12's iproute2 6.1 does not show NTF_EXT_LOCKED).
func (l *lab) lockedEntry(mac string) *model.Entry {
	l.t.Helper()
	own := l.kernelEntry(mac)
	br, err := l.host.Handle.LinkByName("br0")
	if err != nil {
		l.t.Fatalf("br0: %v", err)
	}
	neighs, err := l.host.Handle.NeighList(0, unix.AF_BRIDGE)
	if err != nil {
		l.t.Fatalf("netlink: fdb dump: %v", err)
	}
	lib := slices.ContainsFunc(neighs, func(n netlink.Neigh) bool {
		return n.HardwareAddr.String() == mac && n.Vlan == 0 && n.MasterIndex == br.Attrs().Index && n.FlagsExt&model.NTFExtLocked != 0
	})
	if (own != nil && own.Locked()) != lib {
		l.t.Fatalf("entry for %s: the project's netlink code reads %+v, the library's dump says locked %v", mac, own, lib)
	}
	return own
}

// undeclared runs `fdbhook status --json` in the host namespace, with
// fdbt-g1 running in a fake libvirt directory, requires no problem and
// exit 0, and returns the undeclared MACs it lists as "GUEST NIC PORT
// MAC".
func (l *lab) undeclared(config string) []string {
	l.t.Helper()
	dir := l.t.TempDir()
	for _, d := range []string{"run/qemu", "etc/qemu"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			l.t.Fatal(err)
		}
	}
	d := testlab.Domain{Name: "fdbt-g1", ID: 7, UUID: "5f0c5d4e-7f11-4a4e-9a55-0d0a0c0ffee1",
		NICs: []testlab.NIC{{MAC: guestMAC, Bridge: "br0", Target: "tap0", Model: "virtio", Alias: "net0"}}}
	for rel, text := range map[string]string{"fdbhook.toml": config, "run/qemu/fdbt-g1.xml": d.Live(testlab.Status{Pid: 1}), "etc/qemu/fdbt-g1.xml": d.XML()} {
		if err := os.WriteFile(filepath.Join(dir, rel), []byte(text), 0o644); err != nil {
			l.t.Fatal(err)
		}
	}
	r, err := l.host.Run(nil, testlab.HookEnv(filepath.Join(dir, "fdbhook.toml"),
		"FDBHOOK_LIBVIRT_RUN="+filepath.Join(dir, "run"), "FDBHOOK_LIBVIRT_ETC="+filepath.Join(dir, "etc")),
		suite.Bin("fdbhook"), "status", "--json")
	if err != nil {
		l.t.Fatalf("fdbhook status: %v", err)
	}
	var rep struct {
		Bridges []struct {
			Ports []struct {
				Name       string `json:"name"`
				Guest      string `json:"guest"`
				NIC        string `json:"nic"`
				Undeclared []struct {
					MAC string `json:"mac"`
				} `json:"undeclared_macs"`
			} `json:"ports"`
		} `json:"bridges"`
		Problems []struct {
			Text string `json:"text"`
		} `json:"problems"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &rep); err != nil {
		l.t.Fatalf("fdbhook status --json: %v: %s", err, r)
	}
	if r.Code != 0 || len(rep.Problems) != 0 {
		l.t.Errorf("fdbhook status exits %d with problems %+v, want 0 and none", r.Code, rep.Problems)
	}
	var out []string
	for _, b := range rep.Bridges {
		for _, p := range b.Ports {
			for _, u := range p.Undeclared {
				out = append(out, p.Guest+" "+p.NIC+" "+p.Name+" "+u.MAC)
			}
		}
	}
	return out
}

// TestUndeclaredMACStopAndDeclare: in report mode, declaring the MAC the
// guest sent from as an extra MAC (a start with the metadata) replaces its
// locked entry with a static one, and the MAC passes; at stop, the tap
// that outlived the guest gets learning and flooding back, unlocked and
// without MAB, and the kernel keeps no locked entry on it.
func TestUndeclaredMACStopAndDeclare(t *testing.T) {
	l := newLab(t)
	config := "bridges = [\"br0\"]\n[bridge.br0]\nundeclared_macs = \"report\"\n"
	l.start(config, "")
	l.portFlagsMab("tap0") // skips without MAB
	const other = "02:00:00:fd:b0:78"
	l.guestSends(nestedMAC, other)
	for _, mac := range []string{nestedMAC, other} {
		if e := l.lockedEntry(mac); e == nil || !e.Locked() {
			t.Fatalf("entry for %s = %+v, want a locked one on tap0", mac, e)
		}
	}
	declared := `<fdbhook:fdb ` + ns + `><fdbhook:interface mac="` + guestMAC + `"><fdbhook:mac address="` + nestedMAC + `"/></fdbhook:interface></fdbhook:fdb>`
	l.start(config, declared)
	if e := l.lockedEntry(nestedMAC); e == nil || e.Locked() || !e.Static() || e.Port != "tap0" {
		t.Errorf("entry for the declared %s = %+v, want static on tap0", nestedMAC, e)
	}
	if got := l.guestSends(nestedMAC); !slices.Equal(got, []string{nestedMAC}) {
		t.Errorf("frames that left the bridge came from %v, want %s (declared, it passes)", got, nestedMAC)
	}

	if r := l.hook(config, domainXML(declared), nil, "fdbt-g1", "stopped", "end", "-"); r.Code != 0 {
		t.Fatalf("stop: %s", r)
	}
	if f := l.portFlagsMab("tap0"); f != (model.Flags{Learning: true, Flood: true}) {
		t.Errorf("after stop tap0 is %s, want learning on flood on locked off mab off", f.WordsMab(true, true))
	}
	for _, mac := range []string{guestMAC, nestedMAC, other} {
		if e := l.lockedEntry(mac); e != nil {
			t.Errorf("after stop, entry %s still there", e)
		}
	}
}

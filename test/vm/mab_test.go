//go:build vm

package vm

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fdbhook/fdbhook/pkg/admin"
	"github.com/fdbhook/fdbhook/pkg/model"
)

// TestNoMABFollowIsIgnore checks on the distribution kernel (Debian 12's
// 6.1, which has no MAC Authentication Bypass) what undeclared_macs =
// "follow" does there: doctor's kernel probe finds no MAB and its check
// warns that undeclared-MAC detection is unavailable; the hook still
// manages the port as with "ignore" (learning off, flood off, not locked),
// exits 0 and logs the warning. A kernel with MAB skips.
func TestNoMABFollowIsIgnore(t *testing.T) {
	probe := admin.ProbeKernel(10 * time.Second)
	if probe.Err != nil {
		t.Fatalf("doctor's kernel probe: %v", probe.Err)
	}
	if probe.Mab == nil {
		t.Skip("this kernel has MAC Authentication Bypass")
	}
	t.Logf("doctor's probe: %v", probe.Mab)
	cfg := writeConfig(t, "bridges = [\"br0\"]\n[bridge.br0]\nundeclared_macs = \"follow\"\n")
	sys := &admin.System{
		ConfigPath:     cfg,
		HooksDir:       t.TempDir(),
		Links:          func() ([]*model.Link, error) { return nil, nil },
		Uname:          admin.Uname,
		Probe:          func() admin.Probe { return probe },
		LibvirtVersion: func() (string, string, error) { return "9.0.0", "test", nil },
		Daemons:        func() ([]admin.Daemon, error) { return nil, nil },
		Identify:       func(string) (string, string) { return "", "" },
		Owner:          os.Getuid(),
	}
	var mab []admin.Check
	for _, c := range admin.Doctor(sys) {
		if c.Name == "mac authentication bypass" {
			mab = append(mab, c)
		}
	}
	if len(mab) != 1 || mab[0].Level != admin.Warn || !strings.Contains(mab[0].Text, "undeclared-MAC detection is unavailable on this kernel") {
		t.Errorf("doctor's MAB check %+v, want one warning that detection is unavailable", mab)
	}

	const tap, guestMAC = "fdbttap6", "52:54:00:fd:b6:01"
	n := newNS(t, "nomab")
	n.ip("link add br0 type bridge stp_state 0")
	n.ip("link set dev br0 up")
	n.addTap(tap, "br0")
	d := domain{Name: "fdbt-nomab", UUID: "5d4c1b0e-0000-4000-8000-0000000000c6", ID: 46, NICs: []nic{{MAC: guestMAC, Bridge: "br0", Tap: tap}}}
	r := n.qemuHook(cfg, d, "start", "begin")
	if r.code != 0 || !strings.Contains(r.stderr, "this kernel has no MAC Authentication Bypass") {
		t.Errorf("start: exit %d, want 0 with the no-MAB warning; stderr: %s", r.code, r.stderr)
	}
	if l, f, locked := n.lockFlags(tap); l || f || locked {
		t.Errorf("%s: learning=%v flood=%v locked=%v, want all off (managed as with \"ignore\")", tap, l, f, locked)
	}
}

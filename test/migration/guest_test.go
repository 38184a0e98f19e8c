package migration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fdbhook/fdbhook/test/lab"
)

// Guest is a diskless TCG guest with one virtio NIC on br0.
type Guest struct {
	Name string
	MAC  string
	Tap  string
	// Silent turns the NIC's option ROM off: without iPXE the guest sends
	// nothing at all.
	Silent bool
}

func (g Guest) XML() string {
	nic := lab.NIC{MAC: g.MAC, Bridge: "br0", Target: g.Tap, Model: "virtio"}
	if g.Silent {
		nic.Extra = "      <rom enabled='no'/>\n"
	}
	return lab.Domain{Name: g.Name, Type: "qemu",
		Body: "  <memory unit='MiB'>64</memory>\n  <vcpu>1</vcpu>\n" +
			"  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='network'/></os>\n",
		Devices: "    <emulator>/usr/bin/qemu-system-x86_64</emulator>\n    <memballoon model='none'/>\n",
		NICs:    []lab.NIC{nic}}.XML()
}

// writeXML writes the guest's XML to a file in dir and returns its path.
func (g Guest) writeXML(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), g.Name+".xml")
	if err := os.WriteFile(path, []byte(g.XML()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// Create starts g as a transient guest on h.
func (h *Host) Create(t *testing.T, g Guest) {
	t.Helper()
	h.MustVirsh(t, "create", g.writeXML(t))
}

// Migrate moves g live from h to dst with extra virsh flags and returns
// how long virsh took.
func (h *Host) Migrate(g Guest, dst *Host, flags ...string) (time.Duration, error) {
	args := append([]string{"migrate", "--live"}, flags...)
	args = append(args, g.Name, dst.URI, "--migrateuri", "tcp://"+dst.Addr)
	for try := 0; ; try++ {
		t0 := time.Now()
		_, err := h.Virsh(args...)
		// Right after a guest left dst by migration, libvirt may still be
		// removing its domain object there, and refuses the guest back
		// for a moment: that refusal changes nothing, try again.
		if err != nil && strings.Contains(err.Error(), "is already being removed") && try < 20 {
			time.Sleep(250 * time.Millisecond)
			continue
		}
		return time.Since(t0), err
	}
}

// staticEntries returns the host's static FDB entries for mac on br0, as
// iproute2's bridge shows them ("52:54:… dev up0 master br0 static").
func (h *Host) staticEntries(t *testing.T, mac string) []string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(h.Bridge(t, "fdb", "show", "br", "br0"), "\n") {
		if strings.HasPrefix(line, mac+" ") && strings.Contains(line, " static") {
			out = append(out, strings.TrimSpace(line))
		}
	}
	return out
}

// portFlags returns "learning on flood off" for a port of br0, as the
// netlink library and iproute2's bridge agree it is (lab.ReadPortFlags),
// or "" when there is no such port or they cannot tell.
func (h *Host) portFlags(t *testing.T, port string) string {
	t.Helper()
	f, err := lab.ReadPortFlags(h.Net.Handle, func(args ...string) (string, error) {
		out, err := h.Net.Run(nil, nil, append([]string{"bridge"}, args...)...)
		return out.Stdout, err
	}, port)
	if err != nil {
		return "" // the port is gone, or not yet made
	}
	return strings.TrimSuffix(strings.TrimSuffix(f.String(), " locked off"), " locked on")
}

//go:build e2e

package e2e

import (
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	nlconn "github.com/fdbhook/fdbhook/pkg/kernel"
)

// 9. A guest whose metadata asks for locked ports: after virsh start each of
// its taps is locked, learns and floods nothing and holds the guest's
// static entry; the uplink stays unlocked; after virsh destroy nothing of
// it is left.
func Test9LockedGuest(t *testing.T) {
	timed(t)
	k := suite.k
	requireLockable(t, uplink)
	const (
		g9    = "fdbtg9"
		g9A   = "52:54:00:fd:09:01"
		g9B   = "52:54:00:fd:09:02"
		g9Tap = "fdbtg9a"
	)
	tempGuest(t, g9, []nic{
		{typ: "bridge", mac: g9A, source: bridge0, target: g9Tap},
		{typ: "bridge", mac: g9B, source: bridge0},
	})
	setMetadata(t, g9, `<fdb lock="yes"/>`)
	if x := virshOK(t, "dumpxml", "--inactive", g9); !strings.Contains(x, `lock="yes"`) {
		t.Fatalf("definition of %s lacks the lock metadata:\n%s", g9, x)
	}
	assertLocked(t, uplink, false)

	virshOK(t, "start", g9)
	ports := []guestPort{
		{guest: g9, mac: g9A, tap: g9Tap, bridge: bridge0},
		{guest: g9, mac: g9B, tap: tapOf(t, g9, g9B), bridge: bridge0},
	}
	for _, p := range ports {
		k.assertManaged(t, p.tap, p.bridge, p.mac)
		assertLocked(t, p.tap, true)
	}
	assertLocked(t, uplink, false)
	if r := admin(t, "status"); r.code != 0 {
		t.Errorf("status with %s running locked: exit %d, want 0\n%s%s", g9, r.code, r.stdout, r.stderr)
	} else {
		t.Logf("status with %s running locked:\n%s", g9, r.stdout)
	}
	rep := statusJSON(t, 0)
	for _, p := range ports {
		switch l := rep.assertPort(t, p, false, false); {
		case l == nil:
			t.Errorf("status --json: port %s: no locked field, want locked true", p.tap)
		case !*l:
			t.Errorf("status --json: port %s: locked false, want true", p.tap)
		}
		rep.assertEntry(t, p)
	}

	virshOK(t, "destroy", g9)
	for _, p := range ports {
		k.assertGone(t, p.tap)
	}
	waitFor(5*time.Second, func() bool {
		return len(k.masterEntries(t, g9A)) == 0 && len(k.masterEntries(t, g9B)) == 0
	})
	for _, p := range ports {
		k.assertNoEntries(t, p.mac, bridge0)
	}
	assertLocked(t, uplink, false)
}

// requireLockable skips the test when the kernel does not report the
// locked flag of bridge port port (IFLA_BRPORT_LOCKED, Linux 5.18+).
func requireLockable(t *testing.T, port string) {
	t.Helper()
	c, err := nlconn.Open(netns.None(), nlconn.DefaultTimeout)
	if err != nil {
		t.Fatalf("netlink: %v", err)
	}
	defer c.Close()
	l, err := c.Link(port)
	if err != nil || l == nil {
		t.Fatalf("netlink: link %s: %v", port, err)
	}
	if !l.LockCapable {
		t.Skipf("this kernel reports no IFLA_BRPORT_LOCKED for %s: locked bridge ports need Linux 5.18+", port)
	}
}

var lockedWord = regexp.MustCompile(`(?:^|\s)locked (on|off)\b`)

// assertLocked checks a bridge port's locked flag through netlink (the
// IFLA_BRPORT_LOCKED attribute of its slave data) and through
// `bridge -d link show`.
func assertLocked(t *testing.T, port string, want bool) {
	t.Helper()
	c, err := nlconn.Open(netns.None(), nlconn.DefaultTimeout)
	if err != nil {
		t.Fatalf("netlink: %v", err)
	}
	defer c.Close()
	l, err := c.Link(port)
	switch {
	case err != nil || l == nil:
		t.Errorf("netlink: link %s: %v", port, err)
	case !l.LockCapable:
		t.Errorf("netlink: %s: no IFLA_BRPORT_LOCKED in its slave data", port)
	case l.Flags.Locked != want:
		t.Errorf("netlink: %s locked = %v, want %v", port, l.Flags.Locked, want)
	}
	out, err := exec.Command("bridge", "-d", "link", "show", "dev", port).CombinedOutput()
	if err != nil {
		t.Errorf("bridge -d link show dev %s: %v: %s", port, err, out)
		return
	}
	m := lockedWord.FindStringSubmatch(string(out))
	if m == nil {
		t.Errorf("bridge -d link show dev %s: no locked on/off in %q", port, out)
		return
	}
	if got := m[1] == "on"; got != want {
		t.Errorf("iproute2: bridge -d link show dev %s: locked %s, want locked %v", port, m[1], want)
	}
}

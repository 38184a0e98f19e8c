package migration

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rounds is how many migrations each back-and-forth case makes
// (FDBHOOK_MIGRATION_ROUNDS, default 10).
func rounds(t *testing.T) int {
	if s := os.Getenv("FDBHOOK_MIGRATION_ROUNDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("FDBHOOK_MIGRATION_ROUNDS=%q: want a positive number", s)
		}
		return n
	}
	return 10
}

// TestBackAndForth migrates a chatty guest between the hosts again and
// again, with plain client-driven migrations, --p2p, --persistent and
// --persistent --undefinesource (all but plain with --persistent-xml). Without a watcher `fdbhook reconcile` on the
// destination writes the entries after each migration; with `fdbhook
// watch` on both hosts nothing is run by hand. Every time: exactly one
// static entry for the guest, on the destination's tap; none on the
// source; no mark left; both neighbours reach the guest.
func TestBackAndForth(t *testing.T) {
	for _, tc := range []struct {
		name       string
		flags      []string
		persistent bool
		watcher    bool
		// most caps the number of migrations.
		most int
	}{
		{name: "plain"},
		{name: "p2p", flags: []string{"--p2p"}},
		{name: "persistent", flags: []string{"--persistent"}, persistent: true},
		// libvirt 9.0 refuses a guest back ("domain … is already being
		// removed", for good) on a host it left with --undefinesource when
		// an earlier --persistent migration had defined it there; it does
		// so with a hook that does nothing (/bin/true) too. So two
		// migrations: there and back.
		{name: "undefinesource", flags: []string{"--persistent", "--undefinesource"}, persistent: true, most: 2},
		{name: "watcher", watcher: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := NewPair(t)
			if tc.watcher {
				for _, h := range p.Hosts() {
					h.StartWatcher(t)
				}
			}
			g := Guest{Name: "fdbmig-bf-" + tc.name, MAC: "52:54:00:4d:49:05", Tap: "fdbmigt0"}
			flags := tc.flags
			if tc.persistent {
				path := g.writeXML(t)
				p.A.MustVirsh(t, "define", path)
				p.A.MustVirsh(t, "start", g.Name)
				flags = append(flags, "--persistent-xml", path)
			} else {
				p.A.Create(t, g)
			}
			src, dst := p.A, p.B
			var total time.Duration
			n := rounds(t)
			if tc.most > 0 && n > tc.most {
				n = tc.most
			}
			for i := 1; i <= n; i++ {
				took, err := src.Migrate(g, dst, flags...)
				if err != nil {
					for _, h := range p.Hosts() {
						list, _ := h.Virsh("list", "--all")
						job, _ := h.Virsh("domjobinfo", g.Name)
						t.Logf("host %s: virsh list --all: %s; domjobinfo: %s", h.Name, oneLine(list), oneLine(job))
					}
					t.Fatalf("migration %d %s -> %s: %v", i, src.Name, dst.Name, err)
				}
				total += took
				waitGone(t, src, g)
				if tc.watcher {
					figure(t, "migration %2d %s -> %s: %v", i, src.Name, dst.Name, took.Round(time.Millisecond))
					waitEntry(t, dst, g)
				} else {
					t0 := time.Now()
					out, err := dst.Fdbhook("reconcile")
					if err != nil {
						t.Fatalf("migration %d: reconcile on %s: %v\n%s", i, dst.Name, err, out)
					}
					figure(t, "migration %2d %s -> %s: %v; reconcile on %s %v", i, src.Name, dst.Name,
						took.Round(time.Millisecond), dst.Name, time.Since(t0).Round(time.Millisecond))
					t.Logf("reconcile on %s: %s", dst.Name, oneLine(out))
				}
				if got := dst.staticEntries(t, g.MAC); len(got) != 1 || !strings.Contains(got[0], "dev "+g.Tap+" ") {
					t.Errorf("migration %d: static entries on the destination %s: %v, want exactly one, on %s", i, dst.Name, got, g.Tap)
				}
				if got := src.staticEntries(t, g.MAC); len(got) != 0 {
					t.Errorf("migration %d: static entries left on the source %s: %v", i, src.Name, got)
				}
				if got := dst.portFlags(t, g.Tap); got != "learning off flood off" {
					t.Errorf("migration %d: destination tap %s", i, got)
				}
				for _, h := range p.Hosts() {
					if m := h.Marks(); len(m) != 0 {
						t.Errorf("migration %d: host %s keeps migration marks %v", i, h.Name, m)
					}
				}
				if tc.persistent {
					if _, err := src.Virsh("dominfo", g.Name); err == nil && slices.Contains(flags, "--undefinesource") {
						t.Errorf("migration %d: the source %s still defines the guest", i, src.Name)
					}
					if out := dst.MustVirsh(t, "dominfo", g.Name); !strings.Contains(out, "Persistent:     yes") {
						t.Errorf("migration %d: the destination's guest is not persistent:\n%s", i, out)
					}
				}
				reachable(t, dst, dst, g)
				reachable(t, src, dst, g)
				if t.Failed() {
					return
				}
				src, dst = dst, src
			}
			figure(t, "%d migrations, %v each on average (virsh migrate)", n, (total / time.Duration(n)).Round(time.Millisecond))
			if tc.watcher {
				cleanWatchLogs(t, p)
			}
		})
	}
}

// waitEntry waits up to 5 s for the guest's static entry on h's tap (the
// watcher writes it at the resume; by the time the source has stopped the
// guest it should long be there) and the mark to be gone.
func waitEntry(t *testing.T, h *Host, g Guest) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if len(h.staticEntries(t, g.MAC)) > 0 && len(h.Marks()) == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

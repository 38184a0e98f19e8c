package migration

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// hostState is everything "as it was" compares: br0's static and permanent
// entries, its ports' flags (the guest's tap included, when it exists),
// the guest's state and the host's migration marks.
func hostState(t *testing.T, h *Host, g Guest) []string {
	t.Helper()
	out := []string{"guest " + h.State(g.Name)}
	for _, line := range strings.Split(h.Bridge(t, "fdb", "show", "br", "br0"), "\n") {
		if line == "" || strings.Contains(line, " self") || !(strings.Contains(line, " static") || strings.Contains(line, " permanent")) {
			continue
		}
		out = append(out, "fdb "+strings.TrimSpace(line))
	}
	for _, port := range []string{"up0", "nb0", g.Tap, "fdbmigdup"} {
		if f := h.portFlags(t, port); f != "" {
			out = append(out, "port "+port+" "+f)
		}
	}
	for _, m := range h.Marks() {
		out = append(out, "mark "+m)
	}
	return out
}

// statusHead returns the root element and the <job> element of a guest's
// live XML on h: how libvirt marks a guest paused for a migration.
func statusHead(h *Host, g Guest) string {
	path := filepath.Join(h.Dir, "run-libvirt", "qemu", g.Name+".xml")
	data, err := os.ReadFile(path)
	for i := 0; err != nil && i < 100; i++ { // libvirt writes it after "start begin"
		time.Sleep(50 * time.Millisecond)
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return err.Error()
	}
	var parts []string
	for _, re := range []string{`<domstatus[^>]*>`, `<job [^>]*>`} {
		if m := regexp.MustCompile(re).Find(data); m != nil {
			parts = append(parts, string(m))
		}
	}
	return strings.Join(parts, " ")
}

// waitIncoming waits until g has reached "start begin" on h: its tap
// exists and its mark is pending.
func waitIncoming(t *testing.T, h *Host, g Guest, failed <-chan error) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-failed:
			t.Fatalf("the migration ended before the destination started the guest: %v", err)
		default:
		}
		if _, err := h.Net.Handle.LinkByName(g.Tap); err == nil {
			if m := h.Marks(); len(m) == 1 && strings.Contains(m[0], `"phase":"pending"`) {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("the guest did not arrive on host %s within 60 s (marks %v)", h.Name, h.Marks())
}

// TestCancelledMigration aborts a slowed-down migration while the guest's
// tap exists on the destination: both hosts end as they were.
func TestCancelledMigration(t *testing.T) {
	p := NewPair(t)
	g := Guest{Name: "fdbmig-cancel", MAC: "52:54:00:4d:49:02", Tap: "fdbmigt0"}
	p.A.Create(t, g)
	before := map[*Host][]string{p.A: hostState(t, p.A, g), p.B: hostState(t, p.B, g)}
	done := make(chan error, 1)
	go func() {
		_, err := p.A.Migrate(g, p.B, "--bandwidth", "1")
		done <- err
	}()
	waitIncoming(t, p.B, g, done)
	figure(t, "incoming guest's live XML on the destination: %s", statusHead(p.B, g))
	figure(t, "outgoing guest's live XML on the source: %s", statusHead(p.A, g))
	if got := p.B.staticEntries(t, g.MAC); len(got) != 0 {
		t.Errorf("destination during the migration: static entries %v, want none", got)
	}
	if got := p.B.portFlags(t, g.Tap); got != "learning on flood off" {
		t.Errorf("destination tap during the migration without a watcher: %s, want learning on flood off", got)
	}
	if out, err := p.B.Fdbhook("reconcile"); err != nil {
		t.Errorf("reconcile on the destination during the migration: %v\n%s", err, out)
	} else {
		figure(t, "reconcile on the destination during the migration: %s", oneLine(out))
	}
	if got := p.B.staticEntries(t, g.MAC); len(got) != 0 {
		t.Errorf("reconcile during the migration gave the paused guest entries: %v", got)
	}
	out, _ := p.B.Fdbhook("status")
	t.Logf("status on the destination during the migration:\n%s", out)
	if !strings.Contains(out, "incoming migration") {
		t.Errorf("status does not say the port waits for an incoming migration:\n%s", out)
	}
	t0 := time.Now()
	p.A.MustVirsh(t, "domjobabort", g.Name)
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("the migration succeeded despite domjobabort")
		}
		figure(t, "migration aborted %v after domjobabort: %v", time.Since(t0).Round(time.Millisecond), lastLine(err.Error()))
	case <-time.After(60 * time.Second):
		t.Fatal("virsh migrate did not return within 60 s of domjobabort")
	}
	waitGone(t, p.B, g)
	for _, h := range p.Hosts() {
		sameSnapshot(t, h, "the cancelled migration", before[h], hostState(t, h, g))
	}
	reachable(t, p.B, p.A, g)
}

// TestRefusedMigration has the destination refuse the guest: fdbhook's own
// start refusal (another guest there has the same MAC) and libvirt's
// (another guest of that name is defined there). Both hosts end as they
// were. The guests are silent: a chatty guest's DHCP through the uplink
// would move the other guest's (non-sticky) entry off its tap.
func TestRefusedMigration(t *testing.T) {
	p := NewPair(t)
	g := Guest{Name: "fdbmig-refuse", MAC: "52:54:00:4d:49:03", Tap: "fdbmigt0", Silent: true}
	p.A.Create(t, g)
	t.Run("hook refuses a duplicate MAC", func(t *testing.T) {
		dup := Guest{Name: "fdbmig-dup", MAC: g.MAC, Tap: "fdbmigt1", Silent: true}
		p.B.Create(t, dup)
		defer p.B.Virsh("destroy", dup.Name)
		before := map[*Host][]string{p.A: hostState(t, p.A, g), p.B: hostState(t, p.B, g)}
		_, err := p.A.Migrate(g, p.B)
		if err == nil {
			t.Fatal("the migration succeeded although a guest on the destination has the same MAC")
		}
		figure(t, "refused: %s", lastLine(err.Error()))
		if !strings.Contains(err.Error(), "duplicate MAC") {
			t.Errorf("the refusal does not name the cause: %v", err)
		}
		waitGone(t, p.B, g)
		for _, h := range p.Hosts() {
			sameSnapshot(t, h, "the refused migration", before[h], hostState(t, h, g))
		}
		if got := p.B.staticEntries(t, g.MAC); len(got) != 1 || !strings.Contains(got[0], "dev "+dup.Tap+" ") {
			t.Errorf("the other guest's entry on the destination: %v, want it on %s", got, dup.Tap)
		}
	})
	t.Run("libvirt refuses a name taken", func(t *testing.T) {
		other := g
		other.MAC = "52:54:00:4d:49:04"
		xml := strings.Replace(other.XML(), "<name>", "<uuid>00000000-0000-4000-8000-00000000fdb0</uuid><name>", 1)
		path := filepath.Join(t.TempDir(), "other.xml")
		os.WriteFile(path, []byte(xml), 0o644)
		p.B.MustVirsh(t, "define", path)
		defer p.B.Virsh("undefine", g.Name)
		before := map[*Host][]string{p.A: hostState(t, p.A, g), p.B: hostState(t, p.B, g)}
		_, err := p.A.Migrate(g, p.B)
		if err == nil {
			t.Fatal("the migration succeeded although the destination defines another guest of that name")
		}
		figure(t, "refused: %s", lastLine(err.Error()))
		time.Sleep(time.Second)
		// libvirt refuses after "migrate begin" and runs no other hook:
		// the mark stays, harmless (the next start of a guest of that name
		// here has another UUID, or is minutes later), until reconcile,
		// a stop of that name or its age removes it.
		after := hostState(t, p.B, g)
		var left []string
		for _, l := range after {
			if strings.HasPrefix(l, "mark ") {
				left = append(left, l)
			}
		}
		figure(t, "marks left on the destination by libvirt's refusal: %v", left)
		sameSnapshot(t, p.A, "the refused migration", before[p.A], hostState(t, p.A, g))
		sameSnapshot(t, p.B, "the refused migration (but for its mark)", before[p.B], withoutMarks(after))
		time.Sleep(markOrphanAge)
		out, err := p.B.Fdbhook("reconcile")
		figure(t, "reconcile on the destination %v later: %s", markOrphanAge, oneLine(out))
		if err != nil {
			t.Errorf("reconcile: %v", err)
		}
		sameSnapshot(t, p.B, "the refused migration and a reconcile", before[p.B], hostState(t, p.B, g))
	})
	reachable(t, p.B, p.A, g)
}

// markOrphanAge is how old reconcile wants the mark of a guest that is not
// running before it removes it (pkg/cli), with a margin.
const markOrphanAge = 11 * time.Second

func withoutMarks(state []string) []string {
	var out []string
	for _, l := range state {
		if !strings.HasPrefix(l, "mark ") {
			out = append(out, l)
		}
	}
	return out
}

// reachable checks that from's neighbour reaches g on the host that runs
// it, at: at least 99 of 100 frames.
func reachable(t *testing.T, from, at *Host, g Guest) {
	t.Helper()
	c, err := openCounter(t, at, g.Tap)
	if err != nil {
		t.Fatal(err)
	}
	burst := sendBurst(t, from, g.MAC, "reach-"+from.Name+at.Name, 100, 2*time.Millisecond)
	time.Sleep(200 * time.Millisecond)
	got := c.Stop()
	n := 0
	for _, f := range burst {
		if _, ok := got[f.mark]; ok {
			n++
		}
	}
	if n < 99 {
		t.Errorf("host %s's neighbour reaches the guest on %s with %d of %d frames", from.Name, at.Name, n, len(burst))
	}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// lastLine is virsh's error line, after our command line (and after
// libvirt's quote of a failed hook's command line).
func lastLine(s string) string {
	if i := strings.Index(s, "error: "); i >= 0 {
		s = s[i:]
	}
	if i := strings.Index(s, "unexpected exit status "); i >= 0 {
		s = "error: hook " + s[i+len("unexpected "):]
	}
	return firstLine(s)
}

// oneLine joins a command's output lines with " | ".
func oneLine(s string) string {
	return strings.Join(strings.Split(strings.TrimSpace(s), "\n"), " | ")
}

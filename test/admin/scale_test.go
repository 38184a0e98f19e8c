package admin

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Hundreds of guests and thousands of entries: status and reconcile stay
// fast, because they take one link dump and one FDB dump per bridge.
func TestScale(t *testing.T) {
	const guests, lan = 300, 3000
	l := newLab(t, config)
	l.IP("link", "add", "fdbtbr0", "type", "bridge")
	l.IP("link", "add", "fdbtup0", "type", "vxlan", "id", "42", "dstport", "4789")
	l.IP("link", "set", "fdbtup0", "master", "fdbtbr0")
	var links, fdb []string
	for i := range guests {
		tap := fmt.Sprintf("fdbtg%d", i)
		links = append(links, "tuntap add dev "+tap+" mode tap", "link set "+tap+" master fdbtbr0")
		mac := fmt.Sprintf("52:54:00:fe:%02x:%02x", i>>8, i&255)
		l.write(filepath.Join("run", "qemu", fmt.Sprintf("g%d.xml", i)), domain(fmt.Sprintf("g%d", i), true, nil, nic{"fdbtbr0", tap, mac}))
	}
	for i := range lan {
		fdb = append(fdb, fmt.Sprintf("fdb add 02:00:%02x:%02x:%02x:01 dev fdbtup0 master static", i>>16, (i>>8)&255, i&255))
	}
	l.Batch("ip", links)
	l.Batch("bridge", fdb)

	timed := func(args ...string) (string, time.Duration) {
		start := time.Now()
		out, stderr, code := l.fdbhook(args...)
		took := time.Since(start)
		if code != 0 && !(args[0] == "status" && code == 1) {
			t.Fatalf("%s: exit %d: %s%s", strings.Join(args, " "), code, out, stderr)
		}
		return out, took
	}
	_, statusBefore := timed("status", "--json")
	out, reconcileTook := timed("reconcile")
	if !strings.Contains(out, fmt.Sprintf("%d running guests: %d ok, 0 failed", guests, guests)) {
		t.Errorf("reconcile did not manage every guest:\n%s", out[max(0, len(out)-500):])
	}
	s, code := l.status()
	if code != 0 || len(s.Problems) != 0 {
		t.Errorf("status after reconcile: exit %d, %d problems", code, len(s.Problems))
	}
	_, statusAfter := timed("status", "--json")
	got := l.static("fdbtbr0")
	if len(got) != guests+lan {
		t.Errorf("%d static entries after reconcile, want %d", len(got), guests+lan)
	}
	t.Logf("%d guests, %d LAN entries: status %s, reconcile %s, status again %s", guests, lan, statusBefore, reconcileTook, statusAfter)
	budget := 5 * time.Second
	if os.Getenv("CI") != "" {
		budget = 15 * time.Second // a slow, shared runner
	}
	for name, d := range map[string]time.Duration{"status": statusBefore, "reconcile": reconcileTook} {
		if d > budget {
			t.Errorf("%s took %s, over %s", name, d, budget)
		}
	}
}

package lab_test

import (
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fdbhook/fdbhook/test/lab"
)

// The counters' own tests: a packet socket on a veth in a namespace of
// the test's own, the device taken down and up, or deleted and made again,
// while the counters count; what they counted is read back and compared
// with what was sent.

var suite = &lab.Suite{Name: "lab", Tag: "lab"}

func TestMain(m *testing.M) { os.Exit(suite.Main(m)) }

// pair is a namespace with a veth pair, fdbts0 and fdbtr0, both up: frames sent
// out of fdbts0 arrive on fdbtr0.
func pair(t *testing.T) *lab.Namespace {
	n := lab.NewNamespace(t, suite.NextName())
	n.Batch("ip", []string{
		"link add fdbts0 type veth peer name fdbtr0",
		"link set fdbts0 up",
		"link set fdbtr0 up",
		"link set lo up",
	})
	n.Exec("sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
	return n
}

// marks counts the test frames a capture saw, by mark.
type marks struct {
	mu  sync.Mutex
	got map[string]int
}

func (m *marks) count(f lab.Captured) {
	if mark, ok := lab.Marker(f.Frame); ok && !f.Outgoing {
		m.mu.Lock()
		m.got[mark]++
		m.mu.Unlock()
	}
}

// with returns how many marks start with prefix.
func (m *marks) with(prefix string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for k, c := range m.got {
		if strings.HasPrefix(k, prefix) {
			n += c
		}
	}
	return n
}

// send sends n test frames marked prefix-i out of the sender.
func send(t *testing.T, s *lab.PacketSock, prefix string, n int) {
	t.Helper()
	for i := range n {
		if err := s.Send(lab.Frame(lab.Broadcast, "02:fd:b0:1a:00:01", fmt.Sprintf("%s-%d", prefix, i))); err != nil {
			t.Fatalf("sending frame %d of %s: %v", i, prefix, err)
		}
	}
}

// waitCount waits up to 5 s until m has want frames marked prefix.
func waitCount(t *testing.T, m *marks, prefix string, want int) int {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for m.with(prefix) < want && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	return m.with(prefix)
}

// whats lists the changes' What, comma-separated.
func whats(changes []lab.LinkChange) string {
	var out []string
	for _, c := range changes {
		out = append(out, c.What)
	}
	return strings.Join(out, ", ")
}

func hasChange(changes []lab.LinkChange, what string) bool {
	for _, c := range changes {
		if c.What == what {
			return true
		}
	}
	return false
}

// recorder is a testing.TB that keeps the failures reported to it, so
// that a test can check that a counter fails the test it counts for.
type recorder struct {
	testing.TB
	mu     sync.Mutex
	failed []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed = append(r.failed, fmt.Sprintf(format, args...))
}

func (r *recorder) failures() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.failed...)
}

// TestCountersAcrossDownAndUp takes the device down and up between two
// bursts: the capture and the packet socket count both bursts whole, log
// the down and the up, and do not fail.
func TestCountersAcrossDownAndUp(t *testing.T) {
	n := pair(t)
	links, err := lab.WatchLinks(t, n.NetNS, n.Name, "fdbtr0")
	if err != nil {
		t.Fatal(err)
	}
	m, c, sock, tx := counters(t, n)
	burst(t, tx, m, sock, "before")

	n.IP("link", "set", "fdbtr0", "down")
	waitFor(t, "the capture's ENETDOWN", func() bool { return hasChange(c.Changes(), "ENETDOWN") })
	n.IP("link", "set", "fdbtr0", "up")
	if n.Link("fdbtr0").Attrs().Flags&net.FlagUp == 0 {
		t.Fatal("fdbtr0 is not up again")
	}
	burst(t, tx, m, sock, "after")

	waitFor(t, "the capture's up", func() bool { return hasChange(c.Changes(), "up") })
	changes := c.Changes()
	for _, want := range []string{"down", "ENETDOWN", "up"} {
		if !hasChange(changes, want) {
			t.Errorf("the capture's changes %s lack %q", lab.FormatChanges(changes), want)
		}
	}
	if lost := c.Stop(); lost != "" {
		t.Errorf("the capture lost a device that only went down and up: %s", lost)
	}
	want := "down, carrier off, up, carrier on"
	waitFor(t, "the link log's carrier on", func() bool { return whats(links.Changes()) == want })
	if got := whats(links.Stop()); got != want {
		t.Errorf("the link log recorded %q, want %q", got, want)
	}
	if got := m.with("before") + m.with("after"); got != 40 {
		t.Errorf("capture after Stop: %d frames, want 40", got)
	}
}

// TestCountersOnADeviceNotUpYet opens the counters on a device that is
// not up yet, as the migration suite does on a tap libvirt has just made
// (it makes it down, and sets it up a millisecond later): the kernel's
// packet socket then reports ENETDOWN, and receives once the device is
// up. The counters count what comes after the up.
func TestCountersOnADeviceNotUpYet(t *testing.T) {
	n := pair(t)
	n.IP("link", "set", "fdbtr0", "down")
	m, c, sock, tx := counters(t, n)
	n.IP("link", "set", "fdbtr0", "up")
	burst(t, tx, m, sock, "up")
	waitFor(t, "the capture's up", func() bool { return hasChange(c.Changes(), "up") })
	if got := lab.FormatChanges(c.Changes()); !strings.HasPrefix(got, "down ") {
		t.Errorf("the capture's changes %s do not start with the device down", got)
	}
	if lost := c.Stop(); lost != "" {
		t.Errorf("the capture lost a device that came up: %s", lost)
	}
}

// counters opens a capture (counting into m) and a packet socket on
// fdbtr0, and the sender's packet socket on fdbts0.
func counters(t *testing.T, n *lab.Namespace) (m *marks, c *lab.Capture, sock, tx *lab.PacketSock) {
	t.Helper()
	m = &marks{got: map[string]int{}}
	c, err := lab.OpenCapture(t, n.NetNS, n.Name, "fdbtr0", m.count)
	if err != nil {
		t.Fatal(err)
	}
	if sock, err = lab.OpenPacket(t, n.NetNS, n.Name, "fdbtr0"); err != nil {
		t.Fatal(err)
	}
	if tx, err = lab.OpenPacket(t, n.NetNS, n.Name, "fdbts0"); err != nil {
		t.Fatal(err)
	}
	return m, c, sock, tx
}

// burst sends 20 frames marked tag-i once frames pass from tx to the
// counters (passing), and checks that the capture and the packet socket
// got all 20.
func burst(t *testing.T, tx *lab.PacketSock, m *marks, sock *lab.PacketSock, tag string) {
	t.Helper()
	passing(t, tx, m, tag)
	send(t, tx, tag, 20)
	if got := waitCount(t, m, tag+"-", 20); got != 20 {
		t.Errorf("capture, %s: %d of 20 frames, want all", tag, got)
	}
	got, err := sock.Drain(tag+"-19", 5*time.Second)
	n := 0
	for _, mark := range got {
		if strings.HasPrefix(mark, tag+"-") {
			n++
		}
	}
	if err != nil || n != 20 {
		t.Errorf("packet socket, %s: %d of 20 frames (%v), want all", tag, n, err)
	}
}

// passing sends probe frames from tx until m counts one: the kernel brings
// a device's queue back a moment after its carrier, and drops what is
// sent before.
func passing(t *testing.T, tx *lab.PacketSock, m *marks, tag string) {
	t.Helper()
	probe := "probe-" + tag
	for i := 0; m.with(probe) == 0; i++ {
		if i == 500 {
			t.Fatalf("no frame from fdbts0 reached fdbtr0 in 5 s (%s)", tag)
		}
		send(t, tx, fmt.Sprintf("%s-%d", probe, i), 1)
		time.Sleep(10 * time.Millisecond)
	}
}

// waitFor waits up to 5 s for cond, failing t when it does not come.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not come within 5 s", what)
		}
	}
}

// TestCountersFailWhenTheDeviceIsMadeAgain deletes the device and makes
// it again under its name while a capture and a packet socket are on it:
// their sockets receive nothing from then on, without an error, so each
// must fail its test, saying so, when it is read, instead of counting
// zero; and a capture told the device may go logs it instead.
func TestCountersFailWhenTheDeviceIsMadeAgain(t *testing.T) {
	n := pair(t)
	m := &marks{got: map[string]int{}}
	rec := &recorder{TB: t}
	c, err := lab.OpenCapture(rec, n.NetNS, n.Name, "fdbtr0", m.count)
	if err != nil {
		t.Fatal(err)
	}
	sock, err := lab.OpenPacket(rec, n.NetNS, n.Name, "fdbtr0")
	if err != nil {
		t.Fatal(err)
	}
	mayGo := &recorder{TB: t}
	expected, err := lab.OpenCapture(mayGo, n.NetNS, n.Name, "fdbtr0", func(lab.Captured) {})
	if err != nil {
		t.Fatal(err)
	}
	expected.ExpectGone()
	before := n.Index("fdbtr0")
	links, err := lab.WatchLinks(t, n.NetNS, n.Name, "fdbtr0")
	if err != nil {
		t.Fatal(err)
	}

	n.IP("link", "del", "fdbts0")
	n.Batch("ip", []string{"link add fdbts0 type veth peer name fdbtr0", "link set fdbts0 up", "link set fdbtr0 up"})
	if after := n.Index("fdbtr0"); after == before {
		t.Fatalf("fdbtr0 was made again with the same ifindex %d: the test cannot tell", after)
	}
	tx, err := lab.OpenPacket(t, n.NetNS, n.Name, "fdbts0")
	if err != nil {
		t.Fatal(err)
	}
	// A capture opened on the new device shows that the frames pass.
	control := &marks{got: map[string]int{}}
	if _, err := lab.OpenCapture(t, n.NetNS, n.Name, "fdbtr0", control.count); err != nil {
		t.Fatal(err)
	}
	passing(t, tx, control, "new")
	send(t, tx, "lost", 20)
	if got := waitCount(t, control, "lost-", 20); got != 20 {
		t.Fatalf("a capture on the new fdbtr0 counted %d of 20 frames", got)
	}
	if got := m.with(""); got != 0 {
		t.Fatalf("the capture counted %d frames on the new fdbtr0: the kernel's behaviour this test relies on has changed", got)
	}
	if got, err := sock.Drain("", 0); err != nil || len(got) != 0 {
		t.Fatalf("the packet socket received %v (%v) on the new fdbtr0", got, err)
	}
	waitFor(t, "the capture's news of the deletion", func() bool { return hasChange(c.Changes(), "deleted") })

	if lost := c.Stop(); lost == "" {
		t.Error("the capture's Stop says it followed a device that was deleted and made again")
	}
	sock.Close()
	failed := rec.failures()
	if len(failed) != 2 {
		t.Fatalf("the capture and the packet socket reported %d failures, want one each: %q", len(failed), failed)
	}
	for _, f := range failed {
		if !strings.Contains(f, "lost its device") || !strings.Contains(f, "fdbtr0 (ifindex ") {
			t.Errorf("failure %q does not say which device was lost", f)
		}
	}
	want := "down, carrier off, deleted, made, down, carrier off, up"
	waitFor(t, "the link log's news of the new device", func() bool { return strings.HasPrefix(whats(links.Changes()), want) })
	log := links.Stop()
	if got := whats(log); !strings.HasPrefix(got, want) {
		t.Errorf("the link log recorded %q, want %q (then carrier on)", got, want)
	} else if log[0].Ifindex != before || log[3].Ifindex == before {
		t.Errorf("the link log's ifindexes %v: want the old rx's %d deleted, then a new one made", log, before)
	}
	if lost := expected.Stop(); lost == "" {
		t.Error("the capture that expected its device to go says it followed it")
	}
	if f := mayGo.failures(); len(f) != 0 {
		t.Errorf("a capture told its device may go failed its test: %q", f)
	}
}

// TestTapCounterCountsBothWays reads a TapCounter back on each end of the
// pair: on fdbts0 the test frames the device sends (as a bridge's frames
// to a tap), by mark; on fdbtr0 the frames that come in (as a guest's), by
// source MAC and EtherType, as many as a plain capture there counted.
func TestTapCounterCountsBothWays(t *testing.T) {
	n := pair(t)
	out, err := lab.OpenTapCounter(t, n.NetNS, n.Name, "fdbts0")
	if err != nil {
		t.Fatal(err)
	}
	in, err := lab.OpenTapCounter(t, n.NetNS, n.Name, "fdbtr0")
	if err != nil {
		t.Fatal(err)
	}
	m, _, sock, tx := counters(t, n)
	burst(t, tx, m, sock, "both")
	time.Sleep(100 * time.Millisecond)
	all := m.with("")
	if got := in.FromGuest("02:fd:b0:1a:00:01"); got != all {
		t.Errorf("the counter on fdbtr0 has %d frames from the sender, the capture %d", got, all)
	}
	if got := in.ByType()[lab.EtherType]; got.N != all || got.First.IsZero() {
		t.Errorf("the counter on fdbtr0 has %+v of EtherType %#04x, want %d", got, lab.EtherType, all)
	}
	n20 := 0
	for mark := range out.Stop() {
		if strings.HasPrefix(mark, "both-") {
			n20++
		}
	}
	if n20 != 20 {
		t.Errorf("the counter on fdbts0 saw %d of the 20 frames it sent", n20)
	}
	in.Stop()
}

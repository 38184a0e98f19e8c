package watch

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fdbhook/fdbhook/pkg/kernel"
	"github.com/fdbhook/fdbhook/pkg/model"
	"github.com/fdbhook/fdbhook/test/lab"
)

// TestNetlinkSourceNamesPorts subscribes in a fresh namespace and checks
// that what the watcher must notice (a tap enslaved, its learning flag
// turned on, a static entry added or deleted) arrives as a hint naming the
// port, that dynamic entries do not, and that the source stops promptly.
func TestNetlinkSourceNamesPorts(t *testing.T) {
	if os.Geteuid() != 0 && os.Getenv("CI") == "true" {
		t.Fatal("CI=true: this test needs root to create a network namespace")
	}
	ns := lab.NewNamespace(t, fmt.Sprintf("fdbt-wnl-%d", os.Getpid()))
	ns.IP("link", "add", "fdbtwbr", "type", "bridge")
	ns.IP("link", "set", "fdbtwbr", "up")
	ns.IP("tuntap", "add", "fdbtwtap", "mode", "tap")

	events, stop := runSource(t, &Netlink{NS: ns.NetNS, Log: quietLog()})
	time.Sleep(100 * time.Millisecond) // subscribed

	l, err := ns.Handle.LinkByName("fdbtwtap")
	if err != nil {
		t.Fatal(err)
	}
	idx := l.Attrs().Index
	expect := func(what string, ok func(Event) bool) {
		t.Helper()
		awaitEvent(t, events, what, ok, nil)
	}
	byName := func(e Event) bool { return e.Port == "fdbtwtap" }
	ns.IP("link", "set", "fdbtwtap", "master", "fdbtwbr")
	expect("the tap enslaved", byName)
	ns.Bridge("link", "set", "dev", "fdbtwtap", "learning", "off", "flood", "off")
	expect("learning off", byName)
	ns.Bridge("link", "set", "dev", "fdbtwtap", "learning", "on")
	expect("learning on by hand", byName)
	ns.Bridge("fdb", "replace", "52:54:00:fd:0c:01", "dev", "fdbtwtap", "master", "static")
	expect("a static entry added", func(e Event) bool { return e.PortIndex == idx && strings.Contains(e.Why, "changed") })
	ns.Bridge("fdb", "del", "52:54:00:fd:0c:01", "dev", "fdbtwtap", "master")
	expect("a static entry deleted", func(e Event) bool { return e.PortIndex == idx && strings.Contains(e.Why, "deleted") })

	stop()
}

// TestNetlinkHints: a link notification names its port; an FDB entry on a
// guest's port names the port, a guest's MAC elsewhere names the guest
// (every guest that has it), anything else nothing. Before the watcher
// gave a watchlist, every entry kept names its port, as it may be a
// guest's.
func TestNetlinkHints(t *testing.T) {
	guestMAC := [6]byte{0x52, 0x54, 0x00, 0, 0, 1}
	other := [6]byte{0x0a, 0xfd, 0, 0, 0, 1}
	wl := &kernel.Watchlist{Ports: map[int]string{7: "g1"}, MACs: map[[6]byte][]string{guestMAC: {"g1", "g2"}}}
	fdb := func(index int, mac [6]byte) *kernel.Note {
		return &kernel.Note{Kind: kernel.NoteFDB, Index: index, MAC: mac, State: unix.NUD_NOARP, Rule: 0}
	}
	locked := func(index int, mac [6]byte, deleted bool) *kernel.Note {
		return &kernel.Note{Kind: kernel.NoteFDB, Index: index, MAC: mac, State: unix.NUD_REACHABLE, ExtFlags: model.NTFExtLocked,
			Deleted: deleted, Rule: slices.IndexFunc(kernel.FDBRules, func(r kernel.FDBRule) bool { return r.Name == "locked" })}
	}
	for _, c := range []struct {
		what string
		wl   *kernel.Watchlist
		note *kernel.Note
		want string
	}{
		{"a link", wl, &kernel.Note{Kind: kernel.NoteLink, Index: 9, Name: []byte("vnet3")}, "port vnet3"},
		{"a link deleted", wl, &kernel.Note{Kind: kernel.NoteLink, Index: 9, Name: []byte("vnet3"), Deleted: true}, "port vnet3"},
		{"an entry on a guest's port", wl, fdb(7, other), "index 7"},
		{"a guest's MAC on the uplink", wl, fdb(3, guestMAC), "guest g1, guest g2"},
		{"a guest's MAC on its own port", wl, fdb(7, guestMAC), "index 7"},
		{"neither", wl, fdb(3, other), ""},
		// undeclared_macs = "report": a MAC the guest on port 7 sent from
		// undeclared; the worker compares the port's locked entries with
		// what it logged.
		{"a locked entry on a guest's port", wl, locked(7, other, false), "index 7"},
		{"a locked entry on a guest's port gone", wl, locked(7, other, true), "index 7"},
		{"a locked entry on another port", wl, locked(3, other, false), ""},
		{"no watchlist yet", nil, fdb(3, other), "index 3"},
	} {
		s := &Netlink{Log: quietLog()}
		if c.wl != nil {
			s.list.Store(c.wl)
		}
		var got []string
		s.hint(c.note, func(e Event) {
			switch {
			case e.Port != "":
				got = append(got, "port "+e.Port)
			case e.PortIndex != 0:
				got = append(got, fmt.Sprintf("index %d", e.PortIndex))
			case e.Guest != "":
				got = append(got, "guest "+e.Guest)
			}
		})
		if g := strings.Join(got, ", "); g != c.want {
			t.Errorf("%s: hints %q, want %q", c.what, g, c.want)
		}
	}
}

// fakeNotes is a socket that hands over a script: at each step the clock
// moves to the step's time and Receive returns its note or error. Once the
// script is done it calls idle and waits for Close.
type fakeNotes struct {
	clock     *time.Time
	steps     []noteStep
	idle      func()
	deadlines []time.Time
	watched   []*kernel.Watchlist
	closed    chan struct{}
	once      sync.Once
}

type noteStep struct {
	at  time.Duration
	err error
}

func (f *fakeNotes) Receive(h func(*kernel.Note)) error {
	if len(f.steps) == 0 {
		f.idle()
		<-f.closed
		return os.ErrClosed
	}
	st := f.steps[0]
	f.steps = f.steps[1:]
	*f.clock = time.Unix(0, 0).Add(st.at)
	return st.err
}

func (f *fakeNotes) Watch(wl *kernel.Watchlist) (kernel.FilterReport, error) {
	f.watched = append(f.watched, wl)
	return kernel.FilterReport{Rules: []string{"static"}}, nil
}

func (f *fakeNotes) SetDeadline(t time.Time) error {
	f.deadlines = append(f.deadlines, t)
	return nil
}

func (f *fakeNotes) Counts() (int64, int64, int64) { return 0, 0, 0 }
func (f *fakeNotes) Close() error                  { f.once.Do(func() { close(f.closed) }); return nil }

// varClock is a Clock that reads the time a fakeNotes script sets; the
// listen loop never waits on it.
type varClock struct{ t *time.Time }

func (c varClock) Now() time.Time { return *c.t }
func (c varClock) After(time.Duration) (<-chan time.Time, func()) {
	panic("the listen loop waited on the clock")
}

// handNotes is a socket the test drives one Receive at a time: each
// function sent on recv is one call's work.
type handNotes struct {
	recv   chan func(h func(*kernel.Note)) error
	closed chan struct{}
	once   sync.Once
}

func newHandNotes() *handNotes {
	return &handNotes{recv: make(chan func(h func(*kernel.Note)) error), closed: make(chan struct{})}
}

func (f *handNotes) Receive(h func(*kernel.Note)) error {
	select {
	case do := <-f.recv:
		return do(h)
	case <-f.closed:
		return os.ErrClosed
	}
}

func (f *handNotes) Watch(*kernel.Watchlist) (kernel.FilterReport, error) {
	return kernel.FilterReport{}, nil
}
func (f *handNotes) SetDeadline(time.Time) error   { return nil }
func (f *handNotes) Counts() (int64, int64, int64) { return 0, 0, 0 }
func (f *handNotes) Close() error                  { f.once.Do(func() { close(f.closed) }); return nil }

// TestNetlinkSourceRecovers: a socket that fails, and a socket that
// cannot be opened, each ask for a resync, since events may have been
// missed, and the source opens a socket again after 100 ms (not before),
// through which hints flow again. Lost notifications (ENOBUFS) ask for a
// resync too, but keep the socket.
func TestNetlinkSourceRecovers(t *testing.T) {
	c := newFakeClock()
	socks := make(chan notes)
	openErr := make(chan error)
	src := &Netlink{Log: quietLog(), Clock: c, open: func() (notes, error) {
		select {
		case err := <-openErr:
			return nil, err
		case n := <-socks:
			return n, nil
		}
	}}
	events, _ := runSource(t, src)
	give := func(what string, n notes) {
		t.Helper()
		select {
		case socks <- n:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: the source did not open a socket", what)
		}
	}
	do := func(n *handNotes, f func(h func(*kernel.Note)) error) {
		t.Helper()
		select {
		case n.recv <- f:
		case <-time.After(5 * time.Second):
			t.Fatal("the source does not read its socket")
		}
	}
	link := func(n *handNotes, name string) {
		t.Helper()
		do(n, func(h func(*kernel.Note)) error {
			h(&kernel.Note{Kind: kernel.NoteLink, Name: []byte(name)})
			return nil
		})
		awaitEvent(t, events, "a hint for "+name, func(e Event) bool { return e.Port == name }, func(e Event) {
			t.Fatalf("got %+v, want a hint for %s", e, name)
		})
	}
	resync := func(what, why string) {
		t.Helper()
		awaitEvent(t, events, what, func(e Event) bool { return e.Resync && strings.Contains(e.Why, why) }, func(e Event) {
			t.Fatalf("got %+v, want the resync of %s", e, what)
		})
	}
	reopenAfter := func(what, why string) {
		t.Helper()
		resync(what, why)
		if d := c.nextWait(t, what); d != 100*time.Millisecond {
			t.Fatalf("%s: the source waits %v before opening a socket again, want 100ms", what, d)
		}
		c.Advance(99 * time.Millisecond)
		select {
		case socks <- newHandNotes():
			t.Fatalf("%s: opened a socket again before 100 ms", what)
		default:
		}
		c.Advance(time.Millisecond)
	}

	n1 := newHandNotes()
	give("the first socket", n1)
	link(n1, "vnet1")
	do(n1, func(func(*kernel.Note)) error { return kernel.ErrOverrun })
	resync("lost notifications", "lost")
	link(n1, "vnet2") // the same socket, still read
	do(n1, func(func(*kernel.Note)) error { return errors.New("recvmsg: connection reset") })
	reopenAfter("a failed socket", "connection reset")

	n2 := newHandNotes()
	give("after the failed socket", n2)
	link(n2, "vnet3")
	do(n2, func(func(*kernel.Note)) error { return errors.New("recvmsg: bad message") })
	reopenAfter("a second failed socket", "bad message")
	select {
	case openErr <- errors.New("netlink socket: too many open files"):
	case <-time.After(5 * time.Second):
		t.Fatal("the source did not open a socket after the second failure")
	}
	reopenAfter("a socket that cannot be opened", "too many open files")
	n3 := newHandNotes()
	give("after the failed open", n3)
	link(n3, "vnet4")
}

// TestNetlinkLossesCoalesce: a storm of lost notifications is one resync
// at once and one at the end of each holdoff (1 s, then 2 s), not one per
// ENOBUFS; the deadline the socket is given is the pending resync's; after
// a quiet spell a loss is resynced at once again.
func TestNetlinkLossesCoalesce(t *testing.T) {
	var clock time.Time
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	var steps []noteStep
	for i := range 50 { // 50 losses in the first 900 ms
		steps = append(steps, noteStep{ms(18 * i), kernel.ErrOverrun})
	}
	steps = append(steps,
		noteStep{ms(1000), os.ErrDeadlineExceeded}, // the holdoff's end: resync 2
		noteStep{ms(1500), kernel.ErrOverrun},      // still losing: pending, holdoff now 2 s
		noteStep{ms(2500), os.ErrDeadlineExceeded}, // too early
		noteStep{ms(3000), os.ErrDeadlineExceeded}, // resync 3
		noteStep{ms(20000), kernel.ErrOverrun},     // long after: at once, resync 4
		noteStep{ms(20100), nil})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := &fakeNotes{clock: &clock, steps: steps, idle: cancel, closed: make(chan struct{})}
	s := &Netlink{Log: quietLog(), Clock: varClock{&clock}, open: func() (notes, error) { return f, nil }}
	var resyncs []time.Duration
	err := s.listen(ctx, func(e Event) {
		if e.Resync {
			resyncs = append(resyncs, clock.Sub(time.Unix(0, 0)))
		}
	}, true)
	if err != nil {
		t.Fatal(err)
	}
	if want := []time.Duration{0, ms(1000), ms(3000), ms(20000)}; !slices.Equal(resyncs, want) {
		t.Errorf("resyncs at %v, want %v", resyncs, want)
	}
	var pending []time.Duration
	for _, d := range f.deadlines {
		if !d.IsZero() && !slices.Contains(pending, d.Sub(time.Unix(0, 0))) {
			pending = append(pending, d.Sub(time.Unix(0, 0)))
		}
	}
	if want := []time.Duration{ms(1000), ms(3000)}; !slices.Equal(pending, want) {
		t.Errorf("deadlines %v, want %v", pending, want)
	}
	if s.losses != 52 || s.resyncs != 4 {
		t.Errorf("%d losses, %d resyncs counted; want 52, 4", s.losses, s.resyncs)
	}
}

// TestNetlinkWatchApplies: a watchlist reaches the socket open at the
// time and the next one opened; an equal list is not applied again.
func TestNetlinkWatchApplies(t *testing.T) {
	s := &Netlink{Log: quietLog()}
	wl := &kernel.Watchlist{Ports: map[int]string{7: "g"}, MACs: map[[6]byte][]string{{1}: {"g"}}}
	s.Watch(wl) // no socket yet
	f := &fakeNotes{closed: make(chan struct{})}
	s.attach(f)
	same := &kernel.Watchlist{Ports: map[int]string{7: "g"}, MACs: map[[6]byte][]string{{1}: {"g"}}}
	s.Watch(same)
	other := &kernel.Watchlist{Ports: map[int]string{8: "g"}, MACs: map[[6]byte][]string{{1}: {"g"}}}
	s.Watch(other)
	if len(f.watched) != 2 || f.watched[0] != wl || f.watched[1] != other {
		t.Errorf("the socket got %d lists: %v", len(f.watched), f.watched)
	}
}

// TestNetlinkSourceFollowsGuests: with a watchlist, the source reads the
// real kernel's notifications as the watcher needs them: entries learned
// on the uplink (a busy segment) give no hint, a guest's static entry
// deleted names its port, and moved to the uplink by hand names the guest.
func TestNetlinkSourceFollowsGuests(t *testing.T) {
	if os.Geteuid() != 0 && os.Getenv("CI") == "true" {
		t.Fatal("CI=true: this test needs root to create a network namespace")
	}
	ns := lab.NewNamespace(t, fmt.Sprintf("fdbt-wnf-%d", os.Getpid()))
	ns.IP("link", "add", "fdbtwbr", "type", "bridge")
	ns.IP("link", "add", "fdbtwu0", "type", "veth", "peer", "name", "fdbtwu1")
	ns.IP("tuntap", "add", "fdbtwtap", "mode", "tap")
	ns.IP("link", "set", "fdbtwu0", "master", "fdbtwbr")
	ns.IP("link", "set", "fdbtwtap", "master", "fdbtwbr")
	for _, d := range []string{"fdbtwbr", "fdbtwu0", "fdbtwu1"} {
		ns.IP("link", "set", d, "up")
	}
	const guestMAC = "52:54:00:fd:0c:02"
	tap := ns.Index("fdbtwtap")
	ns.Bridge("fdb", "replace", guestMAC, "dev", "fdbtwtap", "master", "static")
	hw, _ := net.ParseMAC(guestMAC)
	src := &Netlink{NS: ns.NetNS, Log: quietLog()}
	src.Watch(&kernel.Watchlist{Ports: map[int]string{tap: "g"}, MACs: map[[6]byte][]string{[6]byte(hw): {"g"}}})
	events, stop := runSource(t, src)
	up, err := lab.OpenPacket(t, ns.NetNS, "the uplink's far end", "fdbtwu1")
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	// Subscribed once a link change comes through; then the uplink
	// learns, and a notification after that comes through before any
	// hint for what it learned could.
	ns.Bridge("link", "set", "dev", "fdbtwtap", "learning", "off")
	awaitEvent(t, events, "the tap's flags", func(e Event) bool { return e.Port == "fdbtwtap" }, nil)
	noHint := func(e Event) {
		if e.Port == "" {
			t.Errorf("a hint for the uplink's learning: %+v", e)
		}
	}
	for i := range 200 {
		if err := up.Send(lab.Frame("0a:fd:ff:ff:ff:fe", fmt.Sprintf("0a:fd:00:00:%02x:%02x", i>>8, i&0xff), "churn")); err != nil {
			t.Fatal(err)
		}
	}
	for deadline := time.Now().Add(2 * time.Second); !strings.Contains(ns.Bridge("fdb", "show", "dev", "fdbtwu0"), "0a:fd:00:00:00:c7"); {
		if time.Now().After(deadline) {
			t.Fatal("the uplink did not learn the frames' sources")
		}
		time.Sleep(10 * time.Millisecond)
	}
	ns.Bridge("fdb", "del", guestMAC, "dev", "fdbtwtap", "master")
	awaitEvent(t, events, "the guest's entry deleted", func(e Event) bool { return e.PortIndex == tap && strings.Contains(e.Why, "deleted") }, noHint)
	ns.Bridge("fdb", "replace", guestMAC, "dev", "fdbtwu0", "master")
	awaitEvent(t, events, "the guest's MAC moved to the uplink by hand", func(e Event) bool { return e.Guest == "g" }, noHint)
	stop()
}

package watch

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

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

	// The library's sockets are bound when its subscribe calls return:
	// from then on no notification is lost.
	subscribed := make(chan error, 1)
	events, stop := runSource(t, &Netlink{NS: ns.NetNS, Log: quietLog(), open: func(n netns.NsHandle, rcvbuf int) (*subscription, error) {
		sub, err := openSubscription(n, rcvbuf)
		subscribed <- err
		return sub, err
	}})
	select {
	case err := <-subscribed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the source did not subscribe")
	}

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

// TestNeighEventFilter: only static entries of bridges are hints; the
// dynamic entries learning writes on the uplink all the time are not.
func TestNeighEventFilter(t *testing.T) {
	mk := func(family, state int) netlink.NeighUpdate {
		return netlink.NeighUpdate{Type: unix.RTM_NEWNEIGH, Neigh: netlink.Neigh{Family: family, State: state, LinkIndex: 7}}
	}
	for _, c := range []struct {
		u    netlink.NeighUpdate
		want bool
	}{
		{mk(unix.AF_BRIDGE, unix.NUD_NOARP), true},
		{mk(unix.AF_BRIDGE, unix.NUD_NOARP|unix.NUD_REACHABLE), true},
		{mk(unix.AF_BRIDGE, unix.NUD_REACHABLE), false},
		{mk(unix.AF_BRIDGE, unix.NUD_PERMANENT), false},
		{mk(unix.AF_INET, unix.NUD_NOARP), false},
	} {
		e, ok := neighEvent(c.u)
		if ok != c.want || (ok && e.PortIndex != 7) {
			t.Errorf("family %d state %#x: hint %v %+v, want %v", c.u.Family, c.u.State, ok, e, c.want)
		}
	}
}

// handSubscription is a subscription the test feeds and fails by hand;
// end closes its channels, as the library does when its socket fails, and
// as it does once the source ends the subscription.
func handSubscription() (sub *subscription, end func()) {
	sub = &subscription{done: make(chan struct{}), links: make(chan netlink.LinkUpdate),
		neighs: make(chan netlink.NeighUpdate), errs: make(chan error, 4)}
	var once sync.Once
	end = func() {
		once.Do(func() {
			close(sub.links)
			close(sub.neighs)
		})
	}
	go func() {
		<-sub.done
		end()
	}()
	return sub, end
}

// TestNetlinkSourceRecovers: a subscription that reports an error
// (ENOBUFS: the kernel dropped notifications) or that the library closes,
// and a subscription that cannot be made, each ask for a resync, since
// events may have been missed, and the source subscribes again after
// 100 ms (not before), through which hints flow again.
func TestNetlinkSourceRecovers(t *testing.T) {
	c := newFakeClock()
	subs := make(chan *subscription)
	opened := make(chan error)
	src := &Netlink{Log: quietLog(), Clock: c, open: func(netns.NsHandle, int) (*subscription, error) {
		select {
		case err := <-opened:
			return nil, err
		case s := <-subs:
			return s, nil
		}
	}}
	events, _ := runSource(t, src)
	give := func(what string, s *subscription) {
		t.Helper()
		select {
		case subs <- s:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: the source did not subscribe", what)
		}
	}
	link := func(s *subscription, name string) {
		t.Helper()
		s.links <- netlink.LinkUpdate{Link: &netlink.Tuntap{LinkAttrs: netlink.LinkAttrs{Name: name}}}
		awaitEvent(t, events, "a hint for "+name, func(e Event) bool { return e.Port == name }, func(e Event) {
			t.Fatalf("got %+v, want a hint for %s", e, name)
		})
	}
	resyncAfter := func(what, why string) {
		t.Helper()
		awaitEvent(t, events, what, func(e Event) bool { return e.Resync && strings.Contains(e.Why, why) }, func(e Event) {
			t.Fatalf("got %+v, want the resync of %s", e, what)
		})
		if d := c.nextWait(t, what); d != 100*time.Millisecond {
			t.Fatalf("%s: the source waits %v before subscribing again, want 100ms", what, d)
		}
		c.Advance(99 * time.Millisecond)
		extra, _ := handSubscription()
		select {
		case subs <- extra:
			t.Fatalf("%s: subscribed again before 100 ms", what)
		default:
		}
		c.Advance(time.Millisecond)
	}

	s1, _ := handSubscription()
	give("the first subscription", s1)
	link(s1, "vnet1")
	s1.errs <- unix.ENOBUFS
	resyncAfter("ENOBUFS", "no buffer space")

	s2, end := handSubscription()
	give("after ENOBUFS", s2)
	link(s2, "vnet2")
	end() // the library ends the subscription (its socket closed)
	resyncAfter("a closed subscription", "subscription closed")

	select {
	case opened <- errors.New("netlink socket: too many open files"):
	case <-time.After(5 * time.Second):
		t.Fatal("the source did not subscribe after the closed subscription")
	}
	resyncAfter("a failed subscription", "too many open files")
	s3, _ := handSubscription()
	give("after the failed subscription", s3)
	link(s3, "vnet3")
}

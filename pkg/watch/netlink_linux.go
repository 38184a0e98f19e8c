package watch

import (
	"context"
	"errors"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Netlink is the source of the kernel's notifications: links (a tap
// created, enslaved, moved to another bridge, its bridge port flags
// changed) and bridge FDB entries (added, deleted, moved). Each
// subscription has its own socket, a done channel and an error callback;
// an error (ENOBUFS: the kernel dropped notifications) or a closed
// subscription triggers a full resync and a new subscription.
type Netlink struct {
	// NS is the network namespace watched; netns.None() for the current one.
	NS  netns.NsHandle
	Log *logrus.Logger
	// RcvBuf is the socket receive buffer; a burst that overflows it is
	// ENOBUFS and a resync.
	RcvBuf int
	// Clock times the pause before subscribing again; nil means
	// SystemClock.
	Clock Clock

	// open subscribes (nil: openSubscription); tests give it
	// subscriptions they feed and fail by hand.
	open func(ns netns.NsHandle, rcvbuf int) (*subscription, error)
}

// resubscribeDelay is the pause between a failed subscription and the
// next: a kernel that refuses subscriptions must not make a busy loop.
const resubscribeDelay = 100 * time.Millisecond

func (s *Netlink) Name() string { return "netlink" }

// Run subscribes and forwards hints until ctx ends. A subscription that
// fails or is lost (ENOBUFS: notifications were dropped) asks for a
// resync, since events may have been missed, and is made again.
func (s *Netlink) Run(ctx context.Context, emit func(Event)) {
	clock := s.Clock
	if clock == nil {
		clock = SystemClock{}
	}
	first := true
	for ctx.Err() == nil {
		err := s.subscribe(ctx, emit, first)
		first = false
		if ctx.Err() != nil {
			return
		}
		s.Log.Warnf("netlink: %v; subscribing again and resyncing", err)
		emit(Event{Resync: true, Why: "netlink: " + err.Error()})
		if !sleep(clock, resubscribeDelay, ctx.Done()) {
			return
		}
	}
}

// subscribe runs one pair of subscriptions until one fails or ctx ends.
// Both library goroutines have ended when it returns.
func (s *Netlink) subscribe(ctx context.Context, emit func(Event), first bool) error {
	rcvbuf := s.RcvBuf
	if rcvbuf == 0 {
		rcvbuf = 1 << 20
	}
	open := s.open
	if open == nil {
		open = openSubscription
	}
	sub, err := open(s.NS, rcvbuf)
	if err != nil {
		return err
	}
	if !first {
		s.Log.Info("netlink: subscribed again")
	}
	return sub.forward(ctx, emit)
}

// subscription is one pair of the library's subscriptions, links and FDB
// entries (neighbours), which share a done channel and an error channel.
type subscription struct {
	done   chan struct{}
	links  chan netlink.LinkUpdate
	neighs chan netlink.NeighUpdate
	errs   chan error
}

// openSubscription subscribes to the link and neighbour notifications of
// namespace ns, each on a socket with receive buffer rcvbuf. When either
// fails, nothing is left running.
func openSubscription(ns netns.NsHandle, rcvbuf int) (*subscription, error) {
	sub := &subscription{done: make(chan struct{}), links: make(chan netlink.LinkUpdate, 256),
		neighs: make(chan netlink.NeighUpdate, 256), errs: make(chan error, 4)}
	report := func(err error) {
		select {
		case sub.errs <- err:
		default:
		}
	}
	if err := netlink.LinkSubscribeWithOptions(sub.links, sub.done, netlink.LinkSubscribeOptions{
		Namespace: &ns, ErrorCallback: report, ReceiveBufferSize: rcvbuf}); err != nil {
		close(sub.done)
		return nil, err
	}
	if err := netlink.NeighSubscribeWithOptions(sub.neighs, sub.done, netlink.NeighSubscribeOptions{
		Namespace: &ns, ErrorCallback: report, ReceiveBufferSize: rcvbuf}); err != nil {
		close(sub.done)
		drain(nil, drained(sub.links))
		return nil, err
	}
	return sub, nil
}

// forward emits a hint per notification until ctx ends, the library
// reports an error or closes a channel; then it ends both subscriptions
// and waits for them. It returns why it stopped, nil when ctx ended.
func (sub *subscription) forward(ctx context.Context, emit func(Event)) error {
	var err error
	open := 2
	for err == nil && ctx.Err() == nil && open == 2 {
		select {
		case <-ctx.Done():
		case err = <-sub.errs:
		case u, ok := <-sub.links:
			open -= relay(u, ok, linkEvent, emit)
		case u, ok := <-sub.neighs:
			open -= relay(u, ok, neighEvent, emit)
		}
	}
	close(sub.done)
	drain(nil, drained(sub.links), drained(sub.neighs))
	if err == nil && ctx.Err() == nil {
		err = errors.New("subscription closed")
	}
	return err
}

// relay emits the hint a notification u names, if any. It returns 1
// when the channel was closed (ok false), 0 otherwise.
func relay[T any](u T, ok bool, hint func(T) (Event, bool), emit func(Event)) int {
	if !ok {
		return 1
	}
	if e, ok := hint(u); ok {
		emit(e)
	}
	return 0
}

// linkEvent names the port a link notification is about. Every link
// change may matter (created, enslaved, released, flags, deleted); the
// worker sorts out which ports belong to guests.
func linkEvent(u netlink.LinkUpdate) (Event, bool) {
	a := u.Link.Attrs()
	if a == nil || a.Name == "" {
		return Event{}, false
	}
	why := "link " + a.Name
	if u.Header.Type == unix.RTM_DELLINK {
		why += " deleted"
	} else {
		why += " changed"
	}
	return Event{Port: a.Name, Why: why}, true
}

// neighEvent names the port of a bridge FDB notification. Only static
// entries are fdbhook's: dynamic ones come and go with every frame on a
// learning port (the uplink) and are not worth a look.
func neighEvent(u netlink.NeighUpdate) (Event, bool) {
	if u.Family != unix.AF_BRIDGE || u.LinkIndex == 0 || u.State&unix.NUD_NOARP == 0 || u.State&unix.NUD_PERMANENT != 0 {
		return Event{}, false
	}
	why := "fdb " + u.HardwareAddr.String()
	if u.Type == unix.RTM_DELNEIGH {
		why += " deleted"
	} else {
		why += " changed"
	}
	return Event{PortIndex: u.LinkIndex, Why: why}, true
}

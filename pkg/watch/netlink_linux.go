package watch

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/vishvananda/netns"

	"github.com/fdbhook/fdbhook/pkg/kernel"
)

// Netlink is the source of the kernel's notifications: links (a tap
// created, enslaved, moved to another bridge, its bridge port flags
// changed) and bridge FDB entries, on one socket of pkg/kernel's
// (kernel.Notifier). Its socket filter drops in the kernel the FDB
// notifications the watcher does not need (kernel.FDBRules): on a busy
// segment, the dynamic entries learned and aged on the uplink. What comes
// through names a guest (by its port or its MAC, from the Watchlist the
// watcher gives Watch after every batch) or a port. Lost notifications
// (ENOBUFS) ask for a resync, at most one per holdoff while losses go
// on (lostNotes); a socket that fails otherwise is opened again, with a
// resync.
type Netlink struct {
	// NS is the network namespace watched; netns.None() for the current one.
	NS  netns.NsHandle
	Log *logrus.Logger
	// RcvBuf is the socket's receive buffer; 0 is kernel.DefaultNotifyBuffer.
	RcvBuf int
	// Clock times the holdoffs between resyncs for lost notifications
	// and the pause before opening a failed socket again; nil means
	// SystemClock.
	Clock Clock
	// open opens the socket; nil means kernel.OpenNotifier (tests fake it).
	open func() (notes, error)

	mu       sync.Mutex
	notifier notes // the open socket, nil between sockets
	list     atomic.Pointer[kernel.Watchlist]
	left     string // the rules the last filter left out, as logged
	// totals over every socket, logged when Run ends
	received, kept, losses, resyncs int64
}

// resubscribeDelay is the pause between a failed socket and the next: a
// kernel that refuses subscriptions must not make a busy loop.
const resubscribeDelay = 100 * time.Millisecond

func (s *Netlink) Name() string { return "netlink" }

// Holdoffs between resyncs for lost notifications (lostNotes).
const (
	lostHoldoffMin = time.Second
	lostHoldoffMax = time.Minute
)

// Run listens and forwards hints until ctx ends.
func (s *Netlink) Run(ctx context.Context, emit func(Event)) {
	if s.Clock == nil {
		s.Clock = SystemClock{}
	}
	defer func() {
		s.Log.Infof("netlink: %d notifications received, %d of them read as hints; %d losses (ENOBUFS), %d resyncs for them",
			s.received, s.kept, s.losses, s.resyncs)
	}()
	for first := true; ctx.Err() == nil; first = false {
		err := s.listen(ctx, emit, first)
		if ctx.Err() != nil {
			return
		}
		s.Log.Warnf("netlink: %v; subscribing again and resyncing", err)
		emit(Event{Resync: true, Why: "netlink: " + err.Error()})
		if !sleep(s.Clock, resubscribeDelay, ctx.Done()) {
			return
		}
	}
}

// notes is what the source uses of a kernel.Notifier.
type notes interface {
	Receive(handle func(*kernel.Note)) error
	Watch(*kernel.Watchlist) (kernel.FilterReport, error)
	SetDeadline(time.Time) error
	Counts() (received, kept, overruns int64)
	Close() error
}

// listen reads one socket until ctx ends (nil) or it fails.
func (s *Netlink) listen(ctx context.Context, emit func(Event), first bool) error {
	open := s.open
	if open == nil {
		open = func() (notes, error) { return kernel.OpenNotifier(s.NS, s.RcvBuf) }
	}
	n, err := open()
	if err != nil {
		return err
	}
	if !first {
		s.Log.Info("netlink: subscribed again")
	}
	s.attach(n)
	stop := context.AfterFunc(ctx, func() { n.Close() })
	defer func() {
		stop()
		s.attach(nil)
		n.Close()
		r, k, _ := n.Counts()
		s.received, s.kept = s.received+r, s.kept+k
	}()
	lost := newLostNotes(lostHoldoffMin, lostHoldoffMax)
	defer func() { s.losses, s.resyncs = s.losses+lost.losses, s.resyncs+lost.resyncs }()
	handle := func(note *kernel.Note) { s.hint(note, emit) }
	for {
		if err := n.SetDeadline(lost.deadline()); err != nil {
			return err
		}
		err := n.Receive(handle)
		switch {
		case err == nil:
		case errors.Is(err, kernel.ErrOverrun):
			if lost.lost(s.Clock.Now()) {
				s.resync(emit, lost)
			}
		case errors.Is(err, os.ErrDeadlineExceeded):
			if lost.due(s.Clock.Now()) {
				s.resync(emit, lost)
			}
		case ctx.Err() != nil:
			return nil
		default:
			return err
		}
	}
}

func (s *Netlink) resync(emit func(Event), lost *lostNotes) {
	s.Log.Warnf("netlink: %d notifications lost so far (ENOBUFS); resyncing (next resync for losses no sooner than in %s)",
		lost.losses, lost.holdoff)
	emit(Event{Resync: true, Why: "netlink: notifications lost"})
}

// hint turns a notification into the event it is a hint for, if any.
func (s *Netlink) hint(n *kernel.Note, emit func(Event)) {
	what := "changed"
	if n.Deleted {
		what = "deleted"
	}
	if n.Kind == kernel.NoteLink {
		// Every link change may matter (created, enslaved, released,
		// flags, deleted); the worker sorts out which ports are guests'.
		if len(n.Name) > 0 {
			name := string(n.Name)
			emit(Event{Port: name, Why: "link " + name + " " + what})
		}
		return
	}
	emit2 := func(e Event) {
		e.Why = fmt.Sprintf("fdb %s on port %d %s (%s)", net.HardwareAddr(n.MAC[:]), n.Index, what, kernel.FDBRules[n.Rule].Name)
		emit(e)
	}
	wl := s.list.Load()
	switch {
	case wl == nil:
		// No watchlist yet (start-up): the port may be a guest's.
		emit2(Event{PortIndex: n.Index})
	case wl.Ports[n.Index] != "":
		emit2(Event{PortIndex: n.Index})
	default:
		// A guest's MAC on another port (roamed, moved by hand). An
		// entry of neither a guest's port nor a guest's MAC is no
		// guest's business.
		for _, g := range wl.MACs[n.MAC] {
			emit2(Event{Guest: g})
		}
	}
}

// Watch gives the source the guests' ports and MACs: its socket filter and
// its hints follow them from now on. A list equal to the last one changes
// nothing.
func (s *Netlink) Watch(wl *kernel.Watchlist) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.list.Load(); old != nil && sameWatchlist(old, wl) {
		return
	}
	s.list.Store(wl)
	s.apply()
}

// attach makes n the socket Watch applies lists to (nil: none), and
// applies the current list.
func (s *Netlink) attach(n notes) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.notifier = n
	s.apply()
}

// apply gives the socket the current list; called with mu held.
func (s *Netlink) apply() {
	wl := s.list.Load()
	if s.notifier == nil || wl == nil {
		return
	}
	rep, err := s.notifier.Watch(wl)
	if err != nil {
		s.Log.Errorf("netlink: %v", err)
		return
	}
	left := fmt.Sprint(rep.Left)
	switch {
	case left != s.left && len(rep.Left) > 0:
		s.Log.Warnf("netlink: socket filter for %d guest ports and %d MACs: %s: their notifications are not seen until the next resync", len(wl.Ports), len(wl.MACs), rep)
	case left != s.left:
		s.Log.Infof("netlink: socket filter for %d guest ports and %d MACs: %s", len(wl.Ports), len(wl.MACs), rep)
	default:
		s.Log.Debugf("netlink: socket filter for %d guest ports and %d MACs: %s", len(wl.Ports), len(wl.MACs), rep)
	}
	s.left = left
}

func sameWatchlist(a, b *kernel.Watchlist) bool {
	return maps.Equal(a.Ports, b.Ports) && maps.EqualFunc(a.MACs, b.MACs, slices.Equal)
}

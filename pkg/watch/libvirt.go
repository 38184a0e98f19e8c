package watch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket/dialers"
	"github.com/sirupsen/logrus"
)

// Libvirt is the source of libvirt's domain events: lifecycle (started,
// suspended, resumed, stopped) and device added / removed. It reconnects
// with backoff whenever the connection is lost (libvirtd restarted) and
// asks for a resync after every connect, since events may have been
// missed meanwhile. It only listens: the watcher never calls into libvirt
// on a hook's path.
type Libvirt struct {
	Sockets []string
	Log     *logrus.Logger
	// MinBackoff and MaxBackoff bound the delay between connection
	// attempts; it doubles after every failure.
	MinBackoff, MaxBackoff time.Duration
	// DialTimeout bounds one connection attempt.
	DialTimeout time.Duration
	// Clock times the backoff and how long a session lasted; nil means
	// SystemClock.
	Clock Clock

	// serve runs one session (nil: session); tests give it sessions
	// that fail or end as they say.
	serve func(ctx context.Context, emit func(Event)) error
}

func (s *Libvirt) Name() string { return "libvirt" }

func (s *Libvirt) socket() (string, error) {
	for _, p := range s.Sockets {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("none of %v exists", s.Sockets)
}

// stableSession is how long a session must have lasted for a reconnect
// to start again from the shortest backoff.
const stableSession = 2 * time.Second

// Run connects, serves events until the connection drops, and connects
// again, until ctx ends. Attempts that fail wait MinBackoff, then twice as
// long each time, up to MaxBackoff; a session that lasted stableSession
// starts again from MinBackoff, at once.
func (s *Libvirt) Run(ctx context.Context, emit func(Event)) {
	minB, maxB := s.backoffs()
	clock, serve := s.Clock, s.serve
	if clock == nil {
		clock = SystemClock{}
	}
	if serve == nil {
		serve = s.session
	}
	backoff := minB
	lastErr := ""
	for ctx.Err() == nil {
		began := clock.Now()
		err := serve(ctx, emit)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			s.Log.Warn("lost the connection to libvirt; reconnecting")
			lastErr = ""
			if clock.Now().Sub(began) >= stableSession {
				// A session that ran for a while: try again at once.
				backoff = minB
				continue
			}
			// One that dropped at once must not make a busy loop.
			err = errors.New("the connection dropped right after it was made")
		}
		if msg := err.Error(); msg != lastErr {
			s.Log.Warnf("libvirt: %v; retrying (every %s at most)", err, maxB)
			lastErr = msg
		} else {
			s.Log.Debugf("libvirt: %v; retrying in %s", err, backoff)
		}
		if !sleep(clock, backoff, ctx.Done()) {
			return
		}
		backoff = min(backoff*2, maxB)
	}
}

// backoffs returns the bounds of the delay between attempts.
func (s *Libvirt) backoffs() (minB, maxB time.Duration) {
	minB, maxB = s.MinBackoff, s.MaxBackoff
	if minB == 0 {
		minB = 100 * time.Millisecond
	}
	if maxB == 0 {
		maxB = 5 * time.Second
	}
	return minB, maxB
}

// session is one connection. It returns nil when an established
// connection was lost, an error when none could be established.
func (s *Libvirt) session(ctx context.Context, emit func(Event)) error {
	path, err := s.socket()
	if err != nil {
		return err
	}
	timeout := s.DialTimeout
	if timeout == 0 {
		timeout = 2 * time.Second
	}
	l := golibvirt.NewWithDialer(dialers.NewLocal(dialers.WithSocket(path), dialers.WithLocalTimeout(timeout)))
	if err := connect(l, timeout); err != nil {
		return fmt.Errorf("connecting to %s: %w", path, err)
	}
	sctx, cancel := context.WithCancel(ctx)
	var ev domainEvents
	defer func() {
		// go-libvirt's stream goroutines send without a select: read what
		// they still have until the disconnect closes their channels.
		disconnect(l)
		cancel()
		drain(time.After(500*time.Millisecond), drained(ev.lifecycle), drained(ev.added), drained(ev.removed))
	}()
	if err := ev.subscribe(sctx, l, path); err != nil {
		return err
	}
	s.Log.Infof("connected to libvirt at %s", path)
	emit(Event{Resync: true, Why: "connected to libvirt"})
	ev.forward(ctx, l, emit)
	return nil
}

// domainEvents are the event streams of one connection: the guests'
// lifecycle, and NICs (any device) plugged and unplugged.
type domainEvents struct {
	lifecycle      <-chan golibvirt.DomainEventLifecycleMsg
	added, removed <-chan any
}

// subscribe opens the streams, on the connection to the socket at path.
func (ev *domainEvents) subscribe(ctx context.Context, l *golibvirt.Libvirt, path string) error {
	var err error
	ev.lifecycle, err = l.LifecycleEvents(ctx)
	if err != nil {
		return fmt.Errorf("subscribing to lifecycle events on %s: %w", path, err)
	}
	ev.added, err = l.SubscribeEvents(ctx, golibvirt.DomainEventIDDeviceAdded, golibvirt.OptDomain{})
	if err != nil {
		return fmt.Errorf("subscribing to device events on %s: %w", path, err)
	}
	ev.removed, err = l.SubscribeEvents(ctx, golibvirt.DomainEventIDDeviceRemoved, golibvirt.OptDomain{})
	if err != nil {
		return fmt.Errorf("subscribing to device events on %s: %w", path, err)
	}
	return nil
}

// forward emits a hint per event, naming its guest, until ctx ends or the
// connection is lost.
func (ev *domainEvents) forward(ctx context.Context, l *golibvirt.Libvirt, emit func(Event)) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.Disconnected():
			return
		case m, ok := <-ev.lifecycle:
			if !ok {
				return
			}
			emit(lifecycleEvent(m.Dom.Name, m.Event, m.Detail))
		case m, ok := <-ev.added:
			if !ok {
				return
			}
			if e, ok := m.(*golibvirt.DomainEventCallbackDeviceAddedMsg); ok {
				emit(Event{Guest: e.Dom.Name, Why: "device " + e.DevAlias + " added"})
			}
		case m, ok := <-ev.removed:
			if !ok {
				return
			}
			if e, ok := m.(*golibvirt.DomainEventCallbackDeviceRemovedMsg); ok {
				emit(Event{Guest: e.Msg.Dom.Name, Why: "device " + e.Msg.DevAlias + " removed"})
			}
		}
	}
}

// lifecycleEvent maps a libvirt lifecycle event to a hint naming its
// guest. What the event says (started, resumed, migrated) is not acted
// on: the worker reads the guest's live XML, where libvirt writes the
// same, and decides from that (manage.Started, manage.Migration).
func lifecycleEvent(guest string, ev, detail int32) Event {
	return Event{Guest: guest, Why: lifecycleName(ev, detail)}
}

func lifecycleName(ev, detail int32) string {
	name := golibvirt.DomainEventType(ev).String()
	return fmt.Sprintf("lifecycle %s detail %d", name, detail)
}

// connect runs l.Connect with a bound: a daemon that accepts but never
// answers must not hold the watcher.
func connect(l *golibvirt.Libvirt, timeout time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- l.ConnectToURI(golibvirt.QEMUSystem) }()
	select {
	case err := <-done:
		return err
	case <-time.After(timeout):
		go func() {
			// The attempt is still running: close what it opened once
			// it returns, so nothing is left behind.
			if err := <-done; err == nil {
				l.Disconnect()
			}
		}()
		return errors.New("no answer")
	}
}

// disconnect closes the connection, waiting at most half a second: a
// daemon that hangs must not delay the watcher's exit.
func disconnect(l *golibvirt.Libvirt) {
	done := make(chan struct{})
	go func() {
		l.Disconnect()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(500 * time.Millisecond):
	}
}

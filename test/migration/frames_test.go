package migration

import (
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	testlab "github.com/fdbhook/fdbhook/test/lab"
)

// tapCounter records, per test frame, when the bridge forwarded it to one
// tap: a testlab.Capture on the tap, keeping PACKET_OUTGOING, which is what
// a frame the bridge sends to the tap is. A paused guest's tap still counts
// here: its queue fills, the guest gets nothing until it runs. The capture
// counts across the tap going down and up, and fails the test when it
// loses the tap (deleted, made again) unless ExpectGone said it may go.
type tapCounter struct {
	host, dev string
	capture   *testlab.Capture
	mu        sync.Mutex
	got       map[string]time.Time
	// fromGuest is when the guest first sent a frame of each EtherType
	// (0x8035: QEMU's RARP announcement), fromGuestN how many it sent.
	fromGuest  map[int]time.Time
	fromGuestN map[int]int
}

func openCounter(t *testing.T, h *Host, dev string) (*tapCounter, error) {
	c := &tapCounter{host: h.Name, dev: dev, got: map[string]time.Time{}, fromGuest: map[int]time.Time{}, fromGuestN: map[int]int{}}
	capture, err := testlab.OpenCapture(t, h.Net.NetNS, "host "+h.Name, dev, c.count)
	if err != nil {
		return nil, fmt.Errorf("frame counter on %s of host %s: %w", dev, h.Name, err)
	}
	c.capture = capture
	return c, nil
}

// count records one frame the capture saw.
func (c *tapCounter) count(f testlab.Captured) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !f.Outgoing { // what the guest sent
		if len(f.Frame) >= 14 {
			et := int(f.Frame[12])<<8 | int(f.Frame[13])
			if _, seen := c.fromGuest[et]; !seen {
				c.fromGuest[et] = f.At
			}
			c.fromGuestN[et]++
		}
		return
	}
	if m, ok := testlab.Marker(f.Frame); ok {
		if _, seen := c.got[m]; !seen {
			c.got[m] = f.At
		}
	}
}

// Stop ends counting and returns when each frame arrived.
func (c *tapCounter) Stop() map[string]time.Time {
	c.capture.Stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.got
}

// tapFollower counts on every instance of a tap name that appears on a
// host while it runs: libvirt may create a destination's tap more than
// once, and a packet socket stays bound to the device it was opened on.
// An instance may go once a newer one has appeared; the last one must
// last until Stop.
type tapFollower struct {
	t        *testing.T
	h        *Host
	dev      string
	stop     chan struct{}
	done     chan struct{}
	counters []*tapCounter // one per instance, in order of appearance
	// downAtBind is how many of them were bound while their tap was not
	// up yet (their socket reported ENETDOWN), known after Stop.
	downAtBind int
	indexes    []int
	opened     []time.Time // when each instance was first seen
}

// followTap starts following dev on h, polling every 2 ms.
func followTap(t *testing.T, h *Host, dev string) *tapFollower {
	f := &tapFollower{t: t, h: h, dev: dev, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(f.done)
		for {
			if l, err := h.Net.Handle.LinkByName(dev); err == nil && l != nil {
				f.seen(l.Attrs().Index)
			}
			select {
			case <-f.stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	return f
}

// seen opens a counter on the instance idx of the tap unless it has one.
func (f *tapFollower) seen(idx int) {
	if n := len(f.indexes); n > 0 && f.indexes[n-1] == idx {
		return
	}
	at := time.Now()
	c, err := openCounter(f.t, f.h, f.dev)
	if err != nil {
		f.t.Logf("host %s: %s (ifindex %d) went before a counter was on it: %v", f.h.Name, f.dev, idx, err)
		return
	}
	if n := len(f.counters); n > 0 {
		f.counters[n-1].capture.ExpectGone()
	}
	f.counters = append(f.counters, c)
	f.indexes = append(f.indexes, c.capture.Ifindex())
	f.opened = append(f.opened, at)
}

// Stop ends following and counting. It returns when the first instance
// appeared (zero if none did), when each frame first reached any
// instance, what the guest sent on them together, and how many instances
// there were.
func (f *tapFollower) Stop() (first time.Time, got map[string]time.Time, merged *tapCounter, instances int) {
	close(f.stop)
	<-f.done
	got = map[string]time.Time{}
	merged = &tapCounter{host: f.h.Name, dev: f.dev, fromGuest: map[int]time.Time{}, fromGuestN: map[int]int{}}
	for _, c := range f.counters {
		if changes := c.capture.Changes(); len(changes) > 0 && changes[0].What == "down" {
			for _, ch := range changes {
				if ch.What == "ENETDOWN" {
					f.downAtBind++
					break
				}
			}
		}
		for m, at := range c.Stop() {
			if prev, ok := got[m]; !ok || at.Before(prev) {
				got[m] = at
			}
		}
		for et, n := range c.fromGuestN {
			merged.fromGuestN[et] += n
			if prev, ok := merged.fromGuest[et]; !ok || c.fromGuest[et].Before(prev) {
				merged.fromGuest[et] = c.fromGuest[et]
			}
		}
	}
	if len(f.counters) > 0 {
		first = f.opened[0]
	}
	return first, got, merged, len(f.counters)
}

// sender plays a neighbour sending test frames to one MAC at a steady
// rate, from its own namespace, recording when it sent each.
type sender struct {
	sock  *testlab.PacketSock
	src   string
	tag   string
	mu    sync.Mutex
	sent  []sent
	stopc chan struct{}
	done  chan struct{}
}

type sent struct {
	mark string
	at   time.Time
}

// startSending sends a frame to dst every period from h's neighbour.
func startSending(t *testing.T, h *Host, dst, tag string, period time.Duration) *sender {
	t.Helper()
	sock, err := testlab.OpenPacket(t, h.Nb.NetNS, h.Nb.Name, "eth0")
	if err != nil {
		t.Fatal(err)
	}
	s := &sender{sock: sock, src: nbMAC(h), tag: tag, stopc: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(period)
		defer tick.Stop()
		for i := 0; ; i++ {
			m := s.tag + "-" + strconv.Itoa(i)
			at := time.Now()
			if s.sock.Send(testlab.Frame(dst, s.src, m)) == nil {
				s.mu.Lock()
				s.sent = append(s.sent, sent{mark: m, at: at})
				s.mu.Unlock()
			}
			select {
			case <-s.stopc:
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

// Stop stops sending and returns what was sent, in order.
func (s *sender) Stop() []sent {
	close(s.stopc)
	<-s.done
	s.sock.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sent
}

func nbMAC(h *Host) string {
	if h.Name == "a" {
		return "02:fd:b0:00:0b:01"
	}
	return "02:fd:b0:00:0b:02"
}

// sendBurst sends n frames to dst from h's neighbour, period apart, and
// returns their marks.
func sendBurst(t *testing.T, h *Host, dst, tag string, n int, period time.Duration) []sent {
	t.Helper()
	s := startSending(t, h, dst, tag, period)
	for {
		s.mu.Lock()
		k := len(s.sent)
		s.mu.Unlock()
		if k >= n {
			break
		}
		time.Sleep(period)
	}
	return s.Stop()[:n]
}

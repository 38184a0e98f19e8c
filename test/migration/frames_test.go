package migration

import (
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	testlab "github.com/fdbhook/fdbhook/test/lab"
)

// openCounter counts on h's tap dev (testlab.TapCounter: what the bridge
// forwards to the tap, per test frame, and what the guest sends). A paused
// guest's tap still counts: its queue fills, the guest gets nothing until
// it runs.
func openCounter(t *testing.T, h *Host, dev string) (*testlab.TapCounter, error) {
	c, err := testlab.OpenTapCounter(t, h.Net.NetNS, "host "+h.Name, dev)
	if err != nil {
		return nil, fmt.Errorf("frame counter on %s of host %s: %w", dev, h.Name, err)
	}
	return c, nil
}

// guestSent says what the guest sent, by EtherType, for the log.
func guestSent(sent map[int]testlab.Sent) []string {
	var out []string
	for et, s := range sent {
		out = append(out, fmt.Sprintf("%d of EtherType %#04x from %s", s.N, et, s.First.Format("15:04:05.000")))
	}
	slices.Sort(out)
	return out
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
	counters []*testlab.TapCounter // one per instance, in order of appearance
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
		f.counters[n-1].Capture().ExpectGone()
	}
	f.counters = append(f.counters, c)
	f.indexes = append(f.indexes, c.Capture().Ifindex())
	f.opened = append(f.opened, at)
}

// Stop ends following and counting. It returns when the first instance
// appeared (zero if none did), when each frame first reached any
// instance, what the guest sent on them together, and how many instances
// there were.
func (f *tapFollower) Stop() (first time.Time, got map[string]time.Time, sent map[int]testlab.Sent, instances int) {
	close(f.stop)
	<-f.done
	got, sent = map[string]time.Time{}, map[int]testlab.Sent{}
	for _, c := range f.counters {
		if changes := c.Capture().Changes(); len(changes) > 0 && changes[0].What == "down" {
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
		for et, s := range c.ByType() {
			all, seen := sent[et]
			all.N += s.N
			if !seen || s.First.Before(all.First) {
				all.First = s.First
			}
			sent[et] = all
		}
	}
	if len(f.counters) > 0 {
		first = f.opened[0]
	}
	return first, got, sent, len(f.counters)
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

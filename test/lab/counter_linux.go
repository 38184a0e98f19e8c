package lab

import (
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

// TapCounter counts on one device, a guest's tap, through a Capture: the
// test frames the bridge forwards to it (PACKET_OUTGOING), each with when
// it first came, and the frames the guest sends, by source MAC and by
// EtherType. A paused or driverless guest's tap still counts here: its
// queue fills, the guest gets nothing until it reads. Like every Capture
// it counts across its tap going down and up, and fails the test when it
// loses the tap (unless ExpectGone).
type TapCounter struct {
	capture *Capture
	mu      sync.Mutex
	marks   map[string]time.Time
	sources map[string]int
	types   map[int]Sent
}

// Sent is what the guest sent of one kind: how many frames, and when the
// first came.
type Sent struct {
	N     int
	First time.Time
}

// OpenTapCounter starts counting on dev in ns (netns.None(): the test's
// own namespace; called where in messages) until Stop, at the latest when
// tb ends.
func OpenTapCounter(tb testing.TB, ns netns.NsHandle, where, dev string) (*TapCounter, error) {
	c := &TapCounter{marks: map[string]time.Time{}, sources: map[string]int{}, types: map[int]Sent{}}
	capture, err := OpenCapture(tb, ns, where, dev, c.count)
	if err != nil {
		return nil, err
	}
	c.capture = capture
	return c, nil
}

func (c *TapCounter) count(f Captured) {
	if len(f.Frame) < 14 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !f.Outgoing { // the guest sent it
		c.sources[net.HardwareAddr(f.Frame[6:12]).String()]++
		et := int(f.Frame[12])<<8 | int(f.Frame[13])
		s := c.types[et]
		if s.N == 0 {
			s.First = f.At
		}
		s.N++
		c.types[et] = s
		return
	}
	if m, ok := Marker(f.Frame); ok {
		if _, seen := c.marks[m]; !seen {
			c.marks[m] = f.At
		}
	}
}

// FirstWith is when the first test frame whose mark starts with prefix
// reached the device so far; ok is false when none has.
func (c *TapCounter) FirstWith(prefix string) (at time.Time, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for m, t := range c.marks {
		if strings.HasPrefix(m, prefix) && (!ok || t.Before(at)) {
			at, ok = t, true
		}
	}
	return at, ok
}

// FromGuest is how many frames the guest has sent from mac so far.
func (c *TapCounter) FromGuest(mac string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sources[mac]
}

// ByType is what the guest has sent so far, by EtherType (0x8035: QEMU's
// RARP announcement of a migrated guest).
func (c *TapCounter) ByType() map[int]Sent {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[int]Sent, len(c.types))
	for et, s := range c.types {
		out[et] = s
	}
	return out
}

// Capture is the capture the counter reads: its device's changes, its
// ifindex, ExpectGone.
func (c *TapCounter) Capture() *Capture { return c.capture }

// Stop ends counting (a second call changes nothing) and returns when each
// test frame reached the device. It fails the test when the counter lost
// its device (see Capture.Stop).
func (c *TapCounter) Stop() map[string]time.Time {
	c.capture.Stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.marks
}

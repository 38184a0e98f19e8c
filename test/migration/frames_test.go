package migration

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	testlab "github.com/fdbhook/fdbhook/test/lab"
)

// tapCounter records, per test frame, when the bridge forwarded it to one
// tap: a packet socket for every protocol (ETH_P_ALL: only those see
// outgoing frames) keeping PACKET_OUTGOING, which is what a frame the
// bridge sends to the tap is. A paused guest's tap still counts here: its
// queue fills, the guest gets nothing until it runs.
type tapCounter struct {
	host, dev string
	fd        int
	opened    time.Time
	mu        sync.Mutex
	got       map[string]time.Time
	// fromGuest is when the guest first sent a frame of each EtherType
	// (0x8035: QEMU's RARP announcement), fromGuestN how many it sent.
	fromGuest  map[int]time.Time
	fromGuestN map[int]int
	done       chan struct{}
	stopped    chan struct{}
}

func openCounter(ns netns.NsHandle, host, dev string) (*tapCounter, error) {
	c := &tapCounter{host: host, dev: dev, got: map[string]time.Time{}, fromGuest: map[int]time.Time{}, fromGuestN: map[int]int{}, done: make(chan struct{}), stopped: make(chan struct{})}
	err := testlab.InNS(ns, func() error {
		ifi, err := net.InterfaceByName(dev)
		if err != nil {
			return err
		}
		all := int(htons(unix.ETH_P_ALL))
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, all)
		if err != nil {
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
			unix.Close(fd)
			return err
		}
		tv := unix.NsecToTimeval((50 * time.Millisecond).Nanoseconds())
		unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20)
		c.fd = fd
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("packet socket on %s of host %s: %w", dev, host, err)
	}
	c.opened = time.Now()
	go c.loop()
	return c, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (c *tapCounter) loop() {
	defer close(c.stopped)
	buf := make([]byte, 2048)
	for {
		select {
		case <-c.done:
			return
		default:
		}
		n, from, err := unix.Recvfrom(c.fd, buf, 0)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil { // the tap went away
			return
		}
		now := time.Now()
		ll, ok := from.(*unix.SockaddrLinklayer)
		if !ok {
			continue
		}
		if ll.Pkttype != unix.PACKET_OUTGOING { // what the guest sent
			if n >= 14 {
				et := int(buf[12])<<8 | int(buf[13])
				c.mu.Lock()
				if _, seen := c.fromGuest[et]; !seen {
					c.fromGuest[et] = now
				}
				c.fromGuestN[et]++
				c.mu.Unlock()
			}
			continue
		}
		if m, ok := testlab.Marker(buf[:n]); ok {
			c.mu.Lock()
			if _, seen := c.got[m]; !seen {
				c.got[m] = now
			}
			c.mu.Unlock()
		}
	}
}

// Stop ends counting and returns when each frame arrived.
func (c *tapCounter) Stop() map[string]time.Time {
	close(c.done)
	<-c.stopped
	unix.Close(c.fd)
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.got
}

// tapFollower counts on every instance of a tap name that appears on a
// host while it runs: libvirt may create a destination's tap more than
// once, and a packet socket stays bound to the device it was opened on.
type tapFollower struct {
	h        *Host
	dev      string
	stop     chan struct{}
	done     chan struct{}
	counters []*tapCounter // one per instance, in order of appearance
	indexes  []int
}

// followTap starts following dev on h, polling every 2 ms.
func followTap(h *Host, dev string) *tapFollower {
	f := &tapFollower{h: h, dev: dev, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(f.done)
		for {
			if l, err := h.Net.Handle.LinkByName(dev); err == nil && l != nil {
				idx := l.Attrs().Index
				if len(f.indexes) == 0 || f.indexes[len(f.indexes)-1] != idx {
					seen := time.Now()
					if c, err := openCounter(h.Net.NetNS, h.Name, dev); err == nil {
						c.opened = seen
						f.counters = append(f.counters, c)
						f.indexes = append(f.indexes, idx)
					}
				}
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
		first = f.counters[0].opened
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
	sock, err := testlab.OpenPacket(h.Nb.NetNS, "eth0")
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

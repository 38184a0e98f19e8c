package lab

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// TapCounter watches one device, a guest's tap, with a packet socket for
// every protocol (ETH_P_ALL: only such a socket sees outgoing frames): the
// test frames the bridge forwards to it (PACKET_OUTGOING), each with when
// it first came, and the frames the guest sends, by source MAC. A paused
// or driverless guest's tap still counts here: its queue fills, the guest
// gets nothing until it reads.
type TapCounter struct {
	fd      int
	mu      sync.Mutex
	marks   map[string]time.Time
	sources map[string]int
	done    chan struct{}
	stopped chan struct{}
}

// OpenTapCounter starts counting on dev in ns (netns.None(): the test's
// own namespace).
func OpenTapCounter(ns netns.NsHandle, dev string) (*TapCounter, error) {
	c := &TapCounter{marks: map[string]time.Time{}, sources: map[string]int{}, done: make(chan struct{}), stopped: make(chan struct{})}
	open := func() error {
		ifi, err := net.InterfaceByName(dev)
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
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
	}
	var err error
	if ns.IsOpen() {
		err = InNS(ns, open)
	} else {
		err = open()
	}
	if err != nil {
		return nil, fmt.Errorf("packet socket on %s: %w", dev, err)
	}
	go c.loop()
	return c, nil
}

func (c *TapCounter) loop() {
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
		if err != nil {
			return // the device went away
		}
		ll, ok := from.(*unix.SockaddrLinklayer)
		if !ok || n < 14 {
			continue
		}
		now := time.Now()
		c.mu.Lock()
		if ll.Pkttype != unix.PACKET_OUTGOING {
			c.sources[net.HardwareAddr(buf[6:12]).String()]++
		} else if m, ok := Marker(buf[:n]); ok {
			if _, seen := c.marks[m]; !seen {
				c.marks[m] = now
			}
		}
		c.mu.Unlock()
	}
}

// FromGuest is how many frames the guest has sent from mac so far.
func (c *TapCounter) FromGuest(mac string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sources[mac]
}

// Stop ends counting (a second call changes nothing) and returns when each
// test frame reached the device.
func (c *TapCounter) Stop() map[string]time.Time {
	select {
	case <-c.done:
	default:
		close(c.done)
		<-c.stopped
		unix.Close(c.fd)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.marks
}

package lab

import (
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Captured is one frame a Capture received.
type Captured struct {
	At time.Time
	// Outgoing is true for a frame the device sent (PACKET_OUTGOING): on
	// a bridge port, one the bridge forwarded to the port.
	Outgoing bool
	// Frame is the frame, valid only during the call.
	Frame []byte
}

// Capture hands every frame one device carries, both ways, to a function:
// a packet socket for every protocol (ETH_P_ALL: only those see outgoing
// frames) bound to the device, read by a goroutine of its own. It follows
// its device: a down and up is logged and counted across; a device
// deleted, renamed or made again under its name fails the test when the
// capture stops (unless ExpectGone), as does a receive error: a capture
// never reports a silent zero.
type Capture struct {
	// Opened is when the socket was bound.
	Opened time.Time

	dev  *device
	fd   int
	each func(Captured)
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// OpenCapture starts capturing on dev in ns (called where in messages),
// calling each for every frame, from the capture's goroutine, until Stop.
// Stop runs at the latest when tb ends.
func OpenCapture(tb testing.TB, ns netns.NsHandle, where, dev string, each func(Captured)) (*Capture, error) {
	d, err := followDevice(tb, ns, where, dev)
	if err != nil {
		return nil, err
	}
	fd, err := bindPacket(ns, d, htons(unix.ETH_P_ALL), 50*time.Millisecond)
	if err != nil {
		d.finish()
		return nil, err
	}
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20)
	c := &Capture{Opened: time.Now(), dev: d, fd: fd, each: each, stop: make(chan struct{}), done: make(chan struct{})}
	go c.loop()
	tb.Cleanup(func() { c.Stop() })
	return c, nil
}

func (c *Capture) loop() {
	defer close(c.done)
	buf := make([]byte, 2048)
	for {
		select {
		case <-c.stop:
			return
		default:
		}
		n, outgoing, ok, err := c.dev.receive(c.fd, buf)
		if err != nil {
			return // lost: Stop reports it
		}
		if ok {
			c.each(Captured{At: time.Now(), Outgoing: outgoing, Frame: buf[:n]})
		}
	}
}

// Changes returns what happened to the device so far (down, up, …).
func (c *Capture) Changes() []LinkChange { return c.dev.Changes() }

// Ifindex is the device's ifindex, the one the capture is bound to.
func (c *Capture) Ifindex() int { return c.dev.index }

// ExpectGone says the device may go away before Stop (a migrated guest's
// tap on its source host): Stop then logs it instead of failing the test.
func (c *Capture) ExpectGone() { c.dev.ExpectGone() }

// Stop ends the capture; no call of each runs after it returns. It fails
// the test when the capture lost its device (see Capture) and returns
// why, or "" when it followed the device throughout. Later calls return
// "" and do nothing.
func (c *Capture) Stop() (lost string) {
	c.once.Do(func() {
		close(c.stop)
		<-c.done
		unix.Close(c.fd)
		lost = c.dev.finish()
	})
	return lost
}

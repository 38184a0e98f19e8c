package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fdbhook/fdbhook/bench/testbed"
)

// churnEtherType marks the churn frames (IEEE 802 local experimental 1).
const churnEtherType = 0x88b5

// churnDst is the destination of every churn frame: a locally administered
// unicast MAC that no port ever sends from, so the bridge never learns it
// and floods each frame as unknown unicast, as a busy segment's uplink sees.
var churnDst = [6]byte{0x0a, 0xfd, 0xff, 0xff, 0xff, 0xfe}

// sender writes frames into the far end of the uplink from the sender's
// namespace: each from a source MAC the bridge has not seen within its
// ageing time, so that each one is a new entry learned on the uplink (and,
// one ageing time later, an entry aged out).
type sender struct {
	fd      int
	ifindex int
	sent    atomic.Int64
	// behind counts the pacing ticks on which the sender could not catch up.
	behind atomic.Int64
}

// openSender opens a packet socket in lab's namespace, bound for device ifname.
func openSender(lab *testbed.Lab, ifname string) (*sender, error) {
	link, err := lab.Link(ifname)
	if err != nil {
		return nil, err
	}
	s := &sender{fd: -1, ifindex: link.Attrs().Index}
	err = lab.Do(func() error {
		// Protocol 0: the socket only sends; it is handed nothing.
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("AF_PACKET socket: %w", err)
		}
		s.fd = fd
		// Straight to the device: the churn is the bridge's work, not the qdisc's.
		return unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1)
	})
	if err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

func (s *sender) close() {
	if s.fd >= 0 {
		unix.Close(s.fd)
		s.fd = -1
	}
}

// run sends rate frames a second until ctx ends or until it has sent for
// d, whichever comes first; the source MACs cycle through space addresses.
// The pace is kept on a 1 ms tick: each tick sends what the elapsed time
// asks for, at most 50 ms worth (a sender that falls behind does not burst).
func (s *sender) run(ctx context.Context, rate, space int, d time.Duration) error {
	if rate <= 0 {
		return nil
	}
	frame := make([]byte, 60)
	copy(frame[0:6], churnDst[:])
	frame[6], frame[7] = 0x0a, 0xfd
	binary.BigEndian.PutUint16(frame[12:14], churnEtherType)
	to := &unix.SockaddrLinklayer{Ifindex: s.ifindex, Protocol: htons(churnEtherType), Halen: 6}
	copy(to.Addr[:], churnDst[:])
	limit := int64(float64(rate) * d.Seconds())
	maxBurst := int64(max(rate/20, 1))
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	t0 := time.Now()
	var k uint32
	for n := int64(0); n < limit; {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		due := min(int64(float64(rate)*time.Since(t0).Seconds()), limit)
		if due-n > maxBurst {
			s.behind.Add(1)
			due = n + maxBurst
		}
		for ; n < due; n++ {
			binary.BigEndian.PutUint32(frame[8:12], k)
			k = (k + 1) % uint32(space)
			if err := s.send(frame, to); err != nil {
				return err
			}
			s.sent.Add(1)
		}
	}
	return nil
}

// send writes one frame, waiting briefly while the device queue is full.
func (s *sender) send(frame []byte, to *unix.SockaddrLinklayer) error {
	for {
		err := unix.Sendto(s.fd, frame, 0, to)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.ENOBUFS) && !errors.Is(err, unix.EAGAIN) {
			return fmt.Errorf("sending a churn frame: %w", err)
		}
		time.Sleep(50 * time.Microsecond)
	}
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

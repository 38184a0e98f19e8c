package lab

import (
	"bytes"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// EtherType marks the test frames (IEEE 802 local experimental 1), so that
// nothing else the kernel sends is mistaken for them.
const EtherType = 0x88b5

// Broadcast is the Ethernet broadcast address.
const Broadcast = "ff:ff:ff:ff:ff:ff"

// Frame builds an untagged frame of EtherType from src to dst carrying
// mark.
func Frame(dst, src, mark string) []byte { return TaggedFrame(dst, src, 0, mark) }

// TaggedFrame builds a frame of EtherType from src to dst carrying mark,
// with an 802.1Q tag for vid unless vid is 0, padded to the Ethernet
// minimum (60 bytes, 64 with the tag, so that it still is once a bridge
// strips the tag).
func TaggedFrame(dst, src string, vid int, mark string) []byte {
	d, err := net.ParseMAC(dst)
	if err != nil {
		panic(err)
	}
	s, err := net.ParseMAC(src)
	if err != nil {
		panic(err)
	}
	size := 60
	f := make([]byte, 0, 64)
	f = append(f, d...)
	f = append(f, s...)
	if vid != 0 {
		f = append(f, 0x81, 0x00, byte(vid>>8), byte(vid))
		size += 4
	}
	f = append(f, EtherType>>8, EtherType&0xff)
	f = append(f, "fdbt:"+mark+";"...)
	for len(f) < size {
		f = append(f, 0)
	}
	return f
}

// Marker returns the mark a test frame carries, behind an 802.1Q tag or
// not; ok is false for any other frame.
func Marker(f []byte) (mark string, ok bool) {
	if len(f) >= 18 && f[12] == 0x81 && f[13] == 0x00 {
		f = append(f[:12:12], f[16:]...)
	}
	if len(f) < 14 || f[12] != EtherType>>8 || f[13] != EtherType&0xff {
		return "", false
	}
	p, ok := bytes.CutPrefix(f[14:], []byte("fdbt:"))
	if !ok {
		return "", false
	}
	end := bytes.IndexByte(p, ';')
	if end < 0 {
		return "", false
	}
	return string(p[:end]), true
}

// PacketSock is an AF_PACKET socket on one device for EtherType: it plays
// the network beyond that device, receiving what comes out of it and
// sending into it. It follows its device as a Capture does: Drain reads
// on across a down and up (logged), and Close and GuestSends fail the
// test when the device was deleted, renamed or made again meanwhile.
type PacketSock struct {
	FD      int
	Ifindex int

	dev *device
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// OpenPacket opens a PacketSock on dev in ns (called where in messages),
// closed at the latest when tb ends.
func OpenPacket(tb testing.TB, ns netns.NsHandle, where, dev string) (*PacketSock, error) {
	d, err := followDevice(tb, ns, where, dev)
	if err != nil {
		return nil, err
	}
	fd, err := bindPacket(ns, d, htons(EtherType), time.Millisecond)
	if err != nil {
		d.finish()
		return nil, err
	}
	s := &PacketSock{FD: fd, Ifindex: d.index, dev: d}
	tb.Cleanup(s.Close)
	return s, nil
}

// Close closes the socket; it fails the test when the socket lost its
// device while open. Later calls do nothing.
func (s *PacketSock) Close() {
	if s.FD < 0 {
		return
	}
	unix.Close(s.FD)
	s.FD = -1
	s.dev.finish()
}

// Send transmits frame out of the device, as the network beyond it would.
func (s *PacketSock) Send(frame []byte) error {
	return unix.Sendto(s.FD, frame, 0, &unix.SockaddrLinklayer{Protocol: htons(EtherType), Ifindex: s.Ifindex, Halen: 6})
}

// Drain returns the marks of the test frames that arrive until one
// carrying until does, or wait passes (incoming only, not the socket's
// own). until "" drains what is queued now. The device going down and up
// meanwhile is logged and read across; an error says that the socket
// lost its device.
func (s *PacketSock) Drain(until string, wait time.Duration) ([]string, error) {
	deadline := time.Now().Add(wait)
	var got []string
	buf := make([]byte, 2048)
	for {
		left := time.Until(deadline)
		if until == "" || left <= 0 {
			left = time.Millisecond
		}
		tv := unix.NsecToTimeval(left.Nanoseconds())
		if err := unix.SetsockoptTimeval(s.FD, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			return got, err
		}
		n, outgoing, ok, err := s.dev.receive(s.FD, buf)
		switch {
		case err != nil:
			return got, err
		case !ok:
			if until == "" || time.Now().After(deadline) {
				return got, nil
			}
			continue
		case outgoing:
			continue
		}
		if m, ok := Marker(buf[:n]); ok {
			got = append(got, m)
			if m == until {
				return got, nil
			}
		}
	}
}

// GuestSends plays a guest behind a bridge port: it writes a broadcast
// frame from each of srcs, in order, into tapFD (the guest's end of a tap,
// OpenTap), then a barrier frame from barrierSrc, a source the port passes
// in every state under test, and returns how many frames from each source
// the socket received ahead of the barrier. Frames cross the bridge in
// order, so once the barrier is out every earlier frame that was going to
// pass has passed: no sleeps. It fails tb when the barrier does not come
// within wait, and marks it failed when a frame arrives twice.
func (s *PacketSock) GuestSends(tb testing.TB, tapFD int, barrierSrc string, srcs []string, wait time.Duration) map[string]int {
	tb.Helper()
	if stale, err := s.Drain("", 0); err != nil {
		tb.Fatal(err)
	} else if len(stale) > 0 {
		tb.Logf("discarded earlier frames %v", stale)
	}
	seq := time.Now().UnixNano()
	kind := map[string]string{}
	for i, src := range srcs {
		m := fmt.Sprintf("%d-%d-%s", seq, i, src)
		kind[m] = src
		if _, err := unix.Write(tapFD, Frame(Broadcast, src, m)); err != nil {
			tb.Fatalf("guest sending a frame from %s: %v", src, err)
		}
	}
	barrier := fmt.Sprintf("%d-barrier", seq)
	if _, err := unix.Write(tapFD, Frame(Broadcast, barrierSrc, barrier)); err != nil {
		tb.Fatalf("guest sending the barrier frame: %v", err)
	}
	got, err := s.Drain(barrier, wait)
	if err != nil {
		tb.Fatal(err)
	}
	if lost := s.dev.Lost(); lost != "" {
		tb.Fatalf("%s: the packet socket lost its device: %s", s.dev, lost)
	}
	if len(got) == 0 || got[len(got)-1] != barrier {
		tb.Fatalf("the barrier frame from %s did not leave the bridge within %v: the lab does not forward (got %v; %s: changes %s)",
			barrierSrc, wait, got, s.dev, FormatChanges(s.dev.Changes()))
	}
	seen := map[string]bool{}
	passed := map[string]int{}
	for _, m := range got {
		if seen[m] {
			tb.Errorf("frame %s arrived twice", m)
		}
		seen[m] = true
		if src, ok := kind[m]; ok {
			passed[src]++
		}
	}
	return passed
}

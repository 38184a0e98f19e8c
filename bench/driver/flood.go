package main

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/fdbhook/fdbhook/bench/testbed"
)

const (
	floodPorts = 16
	// etherType marks the bench's frames (IEEE local experimental).
	etherType = 0x88b5
	// unknownDsts is how many distinct unknown destination MACs the
	// frames cycle through.
	unknownDsts = 1024
)

var floodSrc = net.HardwareAddr{0x02, 0xfd, 0xb0, 0xff, 0x00, 0x01}

// flood measures what managing the ports saves the bridge: frames to
// unknown unicast MACs enter from the uplink; with the kernel's defaults
// the bridge copies each one to every guest port, and with the ports
// managed by qemu-hook it copies none. The 16 taps are held open as QEMU
// holds them, so they have carrier and every copy can be read and counted.
// Rounds alternate unmanaged and managed.
func (b *bench) flood() error {
	b.res.FloodPorts = floodPorts
	br, err := b.lab.Bridge(floodBridge)
	if err != nil {
		return err
	}
	inner, outer, err := b.lab.Veth(br, "fu0", "fu1")
	if err != nil {
		return err
	}
	nics := testbed.NICs("ft", 0xf1, floodPorts)
	taps := make([]netlink.Link, floodPorts)
	files := make([]*os.File, floodPorts)
	counts := make([]tapCount, floodPorts)
	var wg sync.WaitGroup
	defer func() {
		for _, f := range files {
			if f != nil {
				f.Close()
			}
		}
		wg.Wait()
	}()
	for i, n := range nics {
		if files[i], taps[i], err = b.lab.HeldTap(br, n.Tap); err != nil {
			return err
		}
		wg.Add(1)
		go func(f *os.File, c *tapCount) {
			defer wg.Done()
			drain(f, c)
		}(files[i], &counts[i])
	}
	if err := b.waitForwarding(nics); err != nil {
		return err
	}
	in, err := b.r.input("flood.xml", testbed.DomainXML("flood", floodBridge, nics))
	if err != nil {
		return err
	}
	sock, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
	if err != nil {
		return fmt.Errorf("AF_PACKET socket: %w", err)
	}
	defer unix.Close(sock)
	for round := range 2 * b.o.floodRounds {
		managed := round%2 == 1
		if managed {
			if _, err := b.r.run([]string{b.o.hook, "flood", "start", "begin", "-"}, in, true); err != nil {
				return err
			}
		} else if err := b.lab.Reset(nics); err != nil {
			return err
		}
		if err := b.lab.Check(floodBridge, nics, managed); err != nil {
			return err
		}
		fr, err := b.floodRound(sock, inner, outer, taps, counts)
		if err != nil {
			return err
		}
		fr.Managed = managed
		progress("  %s: %.2f copies/frame, %.0f frames/s", map[bool]string{false: "unmanaged", true: "managed"}[managed],
			float64(fr.Delivered)/float64(fr.Sent), float64(fr.Sent)/fr.SendSeconds)
		b.res.Flood = append(b.res.Flood, *fr)
	}
	return nil
}

// tapCount counts what one tap's reader saw.
type tapCount struct {
	ours  atomic.Int64 // the bench's frames
	other atomic.Int64 // anything else
	// sample is the start of the last other frame, in hex.
	sample atomic.Value
	// stopped is the error that ended the reader before the end of the
	// phase (the tap was deleted under it): its counts are short.
	stopped atomic.Value
}

// drain reads every frame the bridge sends to a tap and counts them, until
// the file is closed at the end of the phase. A tap that goes down and up
// is read across (its queue's file stays open); any other end of reading
// is kept in c.stopped, and the round fails.
func drain(f *os.File, c *tapCount) {
	buf := make([]byte, 65536)
	for {
		n, err := f.Read(buf)
		if errors.Is(err, os.ErrClosed) {
			return
		}
		if err != nil {
			c.stopped.Store(fmt.Errorf("reading %s: %w", f.Name(), err))
			return
		}
		if n >= 14 && binary.BigEndian.Uint16(buf[12:14]) == etherType && bytes.Equal(buf[6:12], floodSrc) {
			c.ours.Add(1)
			continue
		}
		c.other.Add(1)
		c.sample.Store(hex.EncodeToString(buf[:min(n, 48)]))
	}
}

// waitForwarding waits until the bridge forwards on every tap (STP is off,
// so that follows carrier at once).
func (b *bench) waitForwarding(nics []testbed.NIC) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		states, err := b.lab.PortStates(floodBridge)
		if err != nil {
			return err
		}
		waiting := ""
		for _, n := range nics {
			if states[n.Tap] != "forwarding" {
				waiting = n.Tap + " is " + states[n.Tap]
				break
			}
		}
		if waiting == "" && states["fu0"] == "forwarding" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("ports of %s not forwarding after 5 s: %s (uplink %s)", floodBridge, waiting, states["fu0"])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type linkStats struct{ tx, txDrop, rx uint64 }

// stats sums the counters of links, read again by name: a link made again
// under its name (its counters started from zero) is an error.
func (b *bench) stats(links []netlink.Link) (linkStats, error) {
	var s linkStats
	for _, held := range links {
		n := held.Attrs().Name
		l, err := b.lab.Link(n)
		if err != nil {
			return s, fmt.Errorf("%s is gone: %w", n, err)
		}
		if l.Attrs().Index != held.Attrs().Index {
			return s, fmt.Errorf("%s was made again (ifindex %d, now %d): its counters started from zero", n, held.Attrs().Index, l.Attrs().Index)
		}
		st := l.Attrs().Statistics
		if st == nil {
			return s, fmt.Errorf("%s: no statistics", n)
		}
		s.tx += st.TxPackets
		s.txDrop += st.TxDropped
		s.rx += st.RxPackets
	}
	return s, nil
}

// floodRound sends floodFrames frames to unknown unicast MACs into the
// uplink's outer end and counts what reaches the guest taps.
func (b *bench) floodRound(sock int, inner, outer netlink.Link, taps []netlink.Link, counts []tapCount) (*FloodRound, error) {
	before := make([]int64, len(counts))
	otherBefore := make([]int64, len(counts))
	for i := range counts {
		before[i] = counts[i].ours.Load()
		otherBefore[i] = counts[i].other.Load()
	}
	tapBefore, err := b.stats(taps)
	if err != nil {
		return nil, err
	}
	upBefore, err := b.stats([]netlink.Link{inner})
	if err != nil {
		return nil, err
	}
	frame := make([]byte, 64)
	copy(frame[6:12], floodSrc)
	binary.BigEndian.PutUint16(frame[12:14], etherType)
	to := &unix.SockaddrLinklayer{Ifindex: outer.Attrs().Index, Protocol: htons(etherType), Halen: 6}
	fr := &FloodRound{Sent: b.o.floodFrames}
	t0 := time.Now()
	for i := range b.o.floodFrames {
		// 02:fd:b0:00:xx:xx, locally administered, never on any port.
		dst := []byte{0x02, 0xfd, 0xb0, 0x00, byte((i % unknownDsts) >> 8), byte(i % unknownDsts)}
		copy(frame[0:6], dst)
		copy(to.Addr[:], dst)
		binary.BigEndian.PutUint32(frame[14:18], uint32(i))
		for {
			err := unix.Sendto(sock, frame, 0, to)
			if err == nil {
				break
			}
			if !errors.Is(err, unix.ENOBUFS) && !errors.Is(err, unix.EAGAIN) {
				return nil, fmt.Errorf("sending frame %d: %w", i, err)
			}
			fr.Retries++
			time.Sleep(50 * time.Microsecond)
		}
	}
	fr.SendSeconds = time.Since(t0).Seconds()
	// Let the readers finish: wait until the counts stop moving.
	total := func() int64 {
		var t int64
		for i := range counts {
			t += counts[i].ours.Load() - before[i]
		}
		return t
	}
	last, still := total(), time.Now()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		if t := total(); t != last {
			last, still = t, time.Now()
		} else if time.Since(still) > 300*time.Millisecond {
			break
		}
	}
	fr.Delivered = last
	fr.PerTapMin = -1
	for i := range counts {
		d := counts[i].ours.Load() - before[i]
		if o := counts[i].other.Load() - otherBefore[i]; o > 0 {
			fr.Other += o
			fr.OtherSample, _ = counts[i].sample.Load().(string)
		}
		if fr.PerTapMin < 0 || d < fr.PerTapMin {
			fr.PerTapMin = d
		}
		fr.PerTapMax = max(fr.PerTapMax, d)
	}
	for i := range counts {
		if err, _ := counts[i].stopped.Load().(error); err != nil {
			return nil, fmt.Errorf("tap %s: its reader stopped, the round's counts are short: %w", taps[i].Attrs().Name, err)
		}
	}
	tapAfter, err := b.stats(taps)
	if err != nil {
		return nil, err
	}
	upAfter, err := b.stats([]netlink.Link{inner})
	if err != nil {
		return nil, err
	}
	fr.TapTx = tapAfter.tx - tapBefore.tx
	fr.TapDropped = tapAfter.txDrop - tapBefore.txDrop
	fr.UplinkRx = upAfter.rx - upBefore.rx
	return fr, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

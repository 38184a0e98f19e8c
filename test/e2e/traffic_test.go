//go:build e2e

package e2e

import (
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Which tap counter moves when the bridge hands a tap a frame.
//
// Seen from the host, a frame the bridge forwards to a tap is transmitted by
// the tap. tun_net_xmit only queues it in the tap's ring (tx_queue_len, 1000
// frames); tx_packets is counted when QEMU reads the frame out of the ring.
// QEMU reads a tap only while the emulated NIC says it can receive:
//   - virtio-net and e1000 refuse until a guest driver has set them up, so
//     with a diskless guest frames pile up in the ring and neither counter
//     moves until the ring is full; from then on every frame is counted in
//     tx_dropped (measured: 1070 frames sent, tx_packets 0, tx_dropped 78);
//   - rtl8139 accepts while its receiver is disabled and discards the frame
//     itself, so QEMU drains the tap and tx_packets counts every frame.
// The suite's guests therefore use rtl8139 NICs and read tx_packets, plus
// tx_dropped so that a frame lost on the host side still counts as "reached".

// outsideSrc is the source MAC of the outside host's frames. Locally
// administered, so it can never be a real NIC's.
var outsideSrc = mustMAC("02:fd:b7:00:00:fe")

// frameEtherType is IEEE 802's local experimental EtherType: no stack on
// either side answers it.
const frameEtherType = 0x88b5

// sendFrames sends n raw Ethernet frames dst <- src out of ifName, which
// lives in the network namespace nsName. The sending goroutine locks its OS
// thread and moves it into that namespace; it never moves back, so Go retires
// the thread when the goroutine returns and no other code runs in fdbt-out.
func sendFrames(nsName, ifName string, dst, src net.HardwareAddr, n int) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		errc <- func() error {
			ns, err := netns.GetFromName(nsName)
			if err != nil {
				return fmt.Errorf("netns %s: %w", nsName, err)
			}
			defer ns.Close()
			if err := netns.Set(ns); err != nil {
				return fmt.Errorf("enter netns %s: %w", nsName, err)
			}
			ifi, err := net.InterfaceByName(ifName)
			if err != nil {
				return fmt.Errorf("%s in %s: %w", ifName, nsName, err)
			}
			// Protocol 0: this socket sends and never receives.
			fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
			if err != nil {
				return fmt.Errorf("AF_PACKET socket: %w", err)
			}
			defer unix.Close(fd)
			sa := &unix.SockaddrLinklayer{Ifindex: ifi.Index, Halen: 6}
			copy(sa.Addr[:], dst)
			frame := make([]byte, 14+46)
			copy(frame[0:6], dst)
			copy(frame[6:12], src)
			binary.BigEndian.PutUint16(frame[12:14], frameEtherType)
			copy(frame[14:], "fdbhook e2e test frame")
			for i := 0; i < n; i++ {
				if err := unix.Sendto(fd, frame, 0, sa); err != nil {
					return fmt.Errorf("send frame %d: %w", i, err)
				}
			}
			return nil
		}()
	}()
	return <-errc
}

// tapSample is one reading of a tap's counters: tx_packets + tx_dropped
// through netlink and through sysfs, with the tap's ifindex (a tap made
// again under its name starts its counters from zero) and its carrier
// changes (a tap that went down and up kept its counters).
type tapSample struct {
	nl, sys        uint64
	ifindex        int
	carrierChanges uint64
}

// txCount is what the host counted as handed to a tap: tx_packets plus
// tx_dropped, through netlink, and the tap's ifindex.
func (k *kernel) txCount(t *testing.T, tap string) (uint64, int) {
	t.Helper()
	l, err := k.h.LinkByName(tap)
	if err != nil {
		t.Fatalf("netlink: %s: %v", tap, err)
	}
	s := l.Attrs().Statistics
	if s == nil {
		t.Fatalf("netlink: %s: no statistics", tap)
	}
	return s.TxPackets + s.TxDropped, l.Attrs().Index
}

// sysfsCount reads a counter of a tap from /sys, the independent witness.
func sysfsCount(t *testing.T, tap, name string) uint64 {
	t.Helper()
	b, err := os.ReadFile("/sys/class/net/" + tap + "/" + name)
	if err != nil {
		t.Fatal(err)
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// counts samples every tap's counter through netlink and sysfs. A stray
// frame can arrive between the two reads, so a sample counts only when
// netlink reads the same before and after sysfs.
func (k *kernel) counts(t *testing.T, taps []string) map[string]tapSample {
	t.Helper()
	m := map[string]tapSample{}
	for _, tap := range taps {
		for try := 0; ; try++ {
			nl, index := k.txCount(t, tap)
			sys := sysfsCount(t, tap, "statistics/tx_packets") + sysfsCount(t, tap, "statistics/tx_dropped")
			carrier := sysfsCount(t, tap, "carrier_changes")
			if again, _ := k.txCount(t, tap); again == nl || try == 20 {
				m[tap] = tapSample{nl: nl, sys: sys, ifindex: index, carrierChanges: carrier}
				break
			}
		}
	}
	return m
}

// stray is how many frames a tap may see beyond the suite's own: IPv6 is off
// on every link the suite owns, so this is a margin for the unforeseen, far
// below any frame count the assertions distinguish.
const stray = 2

// deliver sends n frames to dst from the outside host and returns, per tap,
// how many frames the bridge handed it (netlink; sysfs must agree). It waits
// until the counters of the taps in expect have reached n, then a little more
// so that late frames to other taps are seen too. A tap made again
// meanwhile fails the test (its counters started from zero); one that went
// down and up is logged.
func (k *kernel) deliver(t *testing.T, dst net.HardwareAddr, n int, taps, expect []string) map[string]uint64 {
	t.Helper()
	before := k.counts(t, taps)
	if err := sendFrames(outNS, outIf, dst, outsideSrc, n); err != nil {
		t.Fatal(err)
	}
	waitFor(5*time.Second, func() bool {
		now := k.counts(t, taps)
		for _, tap := range expect {
			if now[tap].ifindex == before[tap].ifindex && now[tap].nl-before[tap].nl < uint64(n) {
				return false
			}
		}
		return true
	})
	time.Sleep(300 * time.Millisecond)
	after := k.counts(t, taps)
	d := map[string]uint64{}
	for _, tap := range taps {
		b, a := before[tap], after[tap]
		if a.ifindex != b.ifindex {
			t.Fatalf("%s was made again while frames were counted (ifindex %d, now %d): its counters started from zero", tap, b.ifindex, a.ifindex)
		}
		if a.carrierChanges != b.carrierChanges {
			t.Logf("%s: carrier changed %d times while frames were counted (down and up; the counters went on)", tap, a.carrierChanges-b.carrierChanges)
		}
		nl, sys := a.nl-b.nl, a.sys-b.sys
		if nl != sys {
			t.Errorf("%s: netlink counted %d frames, sysfs %d", tap, nl, sys)
		}
		d[tap] = nl
	}
	return d
}

// assertReached checks every tap in want got all n frames, and every other
// tap none (within the stray margin).
func assertReached(t *testing.T, what string, n int, got map[string]uint64, want ...string) {
	t.Helper()
	reach := map[string]bool{}
	for _, tap := range want {
		reach[tap] = true
	}
	for tap, c := range got {
		if reach[tap] && (c < uint64(n) || c > uint64(n+stray)) {
			t.Errorf("%s: tap %s got %d of %d frames, want all", what, tap, c, n)
		}
		if !reach[tap] && c > stray {
			t.Errorf("%s: tap %s got %d of %d frames, want none", what, tap, c, n)
		}
	}
	t.Logf("%s: frames per tap (of %d sent): %v", what, n, got)
}

// quietTaps turns off the taps' own IPv6, whose DAD, router solicitations
// and MLD reports go out of the tap to the guest and would be counted with
// the suite's frames. Turning it off makes each tap send its MLD leave
// reports (3 or 4 frames, repeated after about a second), so it then waits
// until no counter has moved for two seconds.
func (k *kernel) quietTaps(t *testing.T, taps ...string) {
	t.Helper()
	for _, tap := range taps {
		if err := disableIPv6(tap); err != nil {
			t.Fatalf("disable IPv6 on %s: %v", tap, err)
		}
	}
	last, since := k.counts(t, taps), time.Now()
	deadline := since.Add(10 * time.Second)
	for time.Since(since) < 2*time.Second {
		if time.Now().After(deadline) {
			t.Fatalf("tap counters still moving 10 s after IPv6 was turned off: %v", last)
		}
		time.Sleep(250 * time.Millisecond)
		now := k.counts(t, taps)
		for _, tap := range taps {
			if now[tap] != last[tap] {
				last, since = now, time.Now()
				break
			}
		}
	}
}

// outsideHandle opens a netlink handle inside the outside host's namespace.
func outsideHandle() (*netlink.Handle, error) {
	ns, err := netns.GetFromName(outNS)
	if err != nil {
		return nil, err
	}
	defer ns.Close()
	return netlink.NewHandleAt(ns)
}

package kernel

import (
	"errors"
	"fmt"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
)

// interruptDumps makes the lab's kernel change its list of links between
// two datagrams of an answer, while more returns true: the kernel marks
// the rest of that link dump interrupted (NLM_F_DUMP_INTR). It returns how
// many links it added.
func interruptDumps(t *testing.T, l *lab, more func(added int) bool) *int {
	t.Helper()
	added := new(int)
	l.c.received = func() {
		if !more(*added) {
			return
		}
		name := fmt.Sprintf("fdbti%d", *added)
		if err := l.h.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}); err != nil {
			t.Fatalf("adding %s between two datagrams: %v", name, err)
		}
		*added++
	}
	t.Cleanup(func() { l.c.received = nil })
	return added
}

// TestDumpInterruptedEveryTime: a link dump the kernel interrupts on every
// one of its tries is an error naming the interruption, never an empty or
// partial list of devices.
func TestDumpInterruptedEveryTime(t *testing.T) {
	l := newLab(t)
	l.addPorts(t, 60) // a link dump of several datagrams
	added := interruptDumps(t, l, func(int) bool { return true })
	links, err := l.c.Links()
	if *added < dumpRetries {
		t.Fatalf("only %d changes during %d dumps: the dump fits one datagram and the test proves nothing", *added, dumpRetries)
	}
	if !errors.Is(err, nl.ErrDumpInterrupted) || links != nil {
		t.Errorf("Links() with every dump interrupted = %d links, %v; want no list and an error that is nl.ErrDumpInterrupted", len(links), err)
	}
}

// TestDumpInterruptedOnce: a dump interrupted once is tried again, and
// the answer is the whole list, the device added meanwhile included.
func TestDumpInterruptedOnce(t *testing.T) {
	l := newLab(t)
	l.addPorts(t, 60)
	want, err := l.h.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	added := interruptDumps(t, l, func(n int) bool { return n == 0 })
	links, err := l.c.Links()
	if err != nil || *added != 1 {
		t.Fatalf("Links() with the first dump interrupted: %v (%d changes)", err, *added)
	}
	if len(links) != len(want)+1 {
		t.Errorf("Links() after an interrupted dump = %d devices, want %d (%d and fdbti0)", len(links), len(want)+1, len(want))
	}
}

package kernel

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fdbhook/fdbhook/pkg/model"
)

// The kernel carries out the requests of one sendmsg before the first
// answer is read, and sends each answer without waiting for room in the
// socket's receive buffer: an answer that does not fit is dropped. With
// NETLINK_NO_ENOBUFS the drop is silent, so the connection sees what a
// kernel that did the work but answered late looks like: no answer within
// its timeout. starve gives c the smallest receive buffer the kernel allows
// (a few small answers) and that silence, and a short timeout.
func starve(t *testing.T, c *Conn) {
	t.Helper()
	if err := unix.SetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 0); err != nil {
		t.Fatalf("shrinking the receive buffer: %v", err)
	}
	if err := unix.SetsockoptInt(c.fd, unix.SOL_NETLINK, unix.NETLINK_NO_ENOBUFS, 1); err != nil {
		t.Fatalf("setting NETLINK_NO_ENOBUFS: %v", err)
	}
	c.timeout = 100 * time.Millisecond
}

// TestPipelineLostAnswersAreTimeouts: writes the kernel carried out but
// whose answers never came fail with an error that is EAGAIN under
// errors.Is, which is how the apply knows they may be done and undoes
// them; the witness reads back that they were done.
func TestPipelineLostAnswersAreTimeouts(t *testing.T) {
	l := newLab(t)
	idx := l.addPorts(t, pipelineBatch)
	starve(t, l.c)
	errs := l.c.Pipeline(func() {
		for i, port := range idx {
			_ = l.c.ReplaceEntry(model.Entry{MAC: portMAC(i), PortIndex: port, State: model.NUDNoARP, NTFlags: model.NTFMaster})
		}
	})
	lost := 0
	for i, err := range errs {
		if err == nil {
			continue
		}
		lost++
		if !errors.Is(err, unix.EAGAIN) {
			t.Errorf("write %d, its answer lost: %v is not EAGAIN under errors.Is: the apply would not undo it", i, err)
		}
	}
	if lost == 0 {
		t.Fatalf("all %d answers fit the smallest receive buffer: the test lost none and proves nothing", len(idx))
	}
	for i, port := range idx {
		if !l.hasStatic(t, port, portMAC(i)) {
			t.Errorf("port %d: no static entry for %s: the write was not carried out, the test's premise fails", port, portMAC(i))
		}
	}
}

// TestPrefetchFailedGetIsNotNoEntries: FDB gets of a prefetch whose
// answers were lost are not remembered as "no entries": Entries asks the
// kernel again and reports the static entries each port has.
func TestPrefetchFailedGetIsNotNoEntries(t *testing.T) {
	l := newLab(t)
	idx := l.addPorts(t, 2*prefetchBatch)
	ports := map[string][]string{}
	links := map[string][]string{}
	for i, port := range idx {
		name := fmt.Sprintf("fdbtp%d", i)
		ports[name] = []string{portMAC(i)}
		links[name] = nil
		if err := l.c.ReplaceEntry(model.Entry{MAC: portMAC(i), PortIndex: port, State: model.NUDNoARP, NTFlags: model.NTFMaster}); err != nil {
			t.Fatal(err)
		}
	}
	// The devices are read with room for their answers; the FDB gets of
	// the second Prefetch then lose most of theirs.
	l.c.Prefetch(links)
	if got := len(l.c.byName); got != len(idx) {
		t.Fatalf("Prefetch read %d of the %d ports", got, len(idx))
	}
	starve(t, l.c)
	l.c.Prefetch(ports)
	brIndex := l.br.Attrs().Index
	failed := 0
	for i := range idx {
		if e, ok := l.c.entries[entryKey{brIndex, portMAC(i)}]; !ok || len(e) == 0 {
			failed++
		}
	}
	if failed == 0 {
		t.Fatalf("every FDB get of the prefetch was answered: the test lost none and proves nothing")
	}
	l.c.timeout = time.Second
	br := &model.Link{Name: "br0", Index: brIndex}
	for i, port := range idx {
		got, err := l.c.Entries(br, portMAC(i))
		if err != nil {
			t.Errorf("Entries(%s) after a prefetch that lost its answer: %v", portMAC(i), err)
			continue
		}
		want := model.Entry{MAC: portMAC(i), PortIndex: port, Port: fmt.Sprintf("fdbtp%d", i)}
		if len(got) != 1 || got[0].MAC != want.MAC || got[0].PortIndex != want.PortIndex || got[0].Port != want.Port {
			t.Errorf("Entries(%s) after a prefetch that lost its answer = %+v, want the static entry on %s (%d of %d gets failed)",
				portMAC(i), got, want.Port, failed, len(idx))
		}
	}
}

package watch

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeLibvirtd speaks just enough of libvirt's RPC protocol for the
// watcher's libvirt source: auth-list, connect-open, event callback
// (de)registration, close. In drop mode it accepts and at once closes
// every connection, as a daemon that is going down does.
type fakeLibvirtd struct {
	ln      net.Listener
	mu      sync.Mutex
	drop    bool
	accepts []time.Time
	conns   []net.Conn
}

const (
	rpcProgram   = 0x20008086
	procOpen     = 1
	procAuthList = 66
	procRegister = 316
	procLife     = 318
)

func newFakeLibvirtd(t *testing.T) (*fakeLibvirtd, string) {
	path := filepath.Join(t.TempDir(), "libvirt-sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeLibvirtd{ln: ln, drop: true}
	t.Cleanup(func() { ln.Close(); f.closeAll() })
	go f.serve()
	return f, path
}

func (f *fakeLibvirtd) serve() {
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		f.accepts = append(f.accepts, time.Now())
		drop := f.drop
		if !drop {
			f.conns = append(f.conns, c)
		}
		f.mu.Unlock()
		if drop {
			c.Close()
			continue
		}
		go f.handle(c)
	}
}

func (f *fakeLibvirtd) closeAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.conns {
		c.Close()
	}
	f.conns = nil
}

func (f *fakeLibvirtd) setDrop(d bool) {
	f.mu.Lock()
	f.drop = d
	f.mu.Unlock()
}

func (f *fakeLibvirtd) acceptTimes() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.accepts...)
}

func packet(proc, typ, serial uint32, payload []byte) []byte {
	b := make([]byte, 28, 28+len(payload))
	binary.BigEndian.PutUint32(b[0:], uint32(28+len(payload)))
	binary.BigEndian.PutUint32(b[4:], rpcProgram)
	binary.BigEndian.PutUint32(b[8:], 1)
	binary.BigEndian.PutUint32(b[12:], proc)
	binary.BigEndian.PutUint32(b[16:], typ)
	binary.BigEndian.PutUint32(b[20:], serial)
	return append(b, payload...)
}

func u32(vs ...uint32) []byte {
	b := make([]byte, 4*len(vs))
	for i, v := range vs {
		binary.BigEndian.PutUint32(b[4*i:], v)
	}
	return b
}

func (f *fakeLibvirtd) handle(c net.Conn) {
	var wmu sync.Mutex
	callback := uint32(0)
	for {
		hdr := make([]byte, 28)
		if _, err := io.ReadFull(c, hdr); err != nil {
			return
		}
		n := binary.BigEndian.Uint32(hdr[0:])
		if _, err := io.CopyN(io.Discard, c, int64(n-28)); err != nil {
			return
		}
		proc, serial := binary.BigEndian.Uint32(hdr[12:]), binary.BigEndian.Uint32(hdr[20:])
		var payload []byte
		switch proc {
		case procAuthList:
			payload = u32(1, 0) // one auth type: none
		case procRegister:
			callback++
			payload = u32(callback)
		}
		wmu.Lock()
		c.Write(packet(proc, 1, serial, payload))
		wmu.Unlock()
	}
}

// lifecycle sends a lifecycle event on the newest connection, to the
// first registered callback (the source registers lifecycle first).
func (f *fakeLibvirtd) lifecycle(guest string, ev, detail uint32) {
	f.mu.Lock()
	c := f.conns[len(f.conns)-1]
	f.mu.Unlock()
	name := []byte(guest)
	pad := make([]byte, (4-len(name)%4)%4)
	payload := u32(1, uint32(len(name)))
	payload = append(payload, name...)
	payload = append(payload, pad...)
	payload = append(payload, make([]byte, 16)...) // UUID
	payload = append(payload, u32(1, ev, detail)...)
	c.Write(packet(procLife, 2, 0, payload))
}

// TestLibvirtReconnectsAndResyncs: against a daemon that drops every
// connection the source keeps trying; once the daemon serves, it connects,
// asks for a resync (events may have been missed) and forwards events;
// when libvirtd restarts it connects again and asks for a resync again.
// The delays between attempts are TestLibvirtBackoff's.
func TestLibvirtReconnectsAndResyncs(t *testing.T) {
	d, sock := newFakeLibvirtd(t)
	c := newFakeClock()
	src := &Libvirt{Sockets: []string{sock}, Log: quietLog(), DialTimeout: 5 * time.Second, Clock: c}
	events, _ := runSource(t, src)

	for i := range 3 {
		c.nextWait(t, fmt.Sprintf("attempt %d failing", i+1))
		if n := len(d.acceptTimes()); n != i+1 {
			t.Fatalf("%d connections after %d attempts", n, i+1)
		}
		select {
		case e := <-events:
			t.Fatalf("event %+v without a connection", e)
		default:
		}
		if i < 2 {
			c.Advance(5 * time.Second)
		}
	}

	// The daemon is back: a connection, and a resync for what was missed.
	d.setDrop(false)
	c.Advance(5 * time.Second)
	expect := func(what string, ok func(Event) bool) {
		t.Helper()
		awaitEvent(t, events, what, ok, func(e Event) { t.Fatalf("got %+v, want %s", e, what) })
	}
	expect("a resync after connecting", func(e Event) bool { return e.Resync })
	d.lifecycle("g1", 4, 1) // resumed, migrated
	expect("a hint for g1", func(e Event) bool { return e.Guest == "g1" && strings.Contains(e.Why, "Resumed") })

	// libvirtd restarts: the connection drops, the source reconnects and
	// asks for a resync again.
	c.Advance(time.Minute) // a session that lasted: reconnect at once
	d.closeAll()
	expect("a resync after reconnecting", func(e Event) bool { return e.Resync })
	d.lifecycle("g2", 2, 0) // started, booted
	expect("a hint for g2", func(e Event) bool { return e.Guest == "g2" && strings.Contains(e.Why, "Started") })
}

// TestLibvirtBackoff pins the delays between connection attempts: from
// 100 ms, doubled after each failed attempt, at most 5 s; a session that
// lasted 2 s or more is followed by an attempt at once, and the delays
// start again from 100 ms; one that ended sooner counts as a failure.
func TestLibvirtBackoff(t *testing.T) {
	c := newFakeClock()
	sessions := make(chan func() error)
	src := &Libvirt{Log: quietLog(), Clock: c, serve: func(ctx context.Context, emit func(Event)) error {
		select {
		case s := <-sessions:
			return s()
		case <-ctx.Done():
			return ctx.Err()
		}
	}}
	runSource(t, src)
	session := func(what string, s func() error) {
		t.Helper()
		select {
		case sessions <- s:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: the source did not try to connect", what)
		}
	}
	refused := func() error { return errors.New("connection refused") }
	lasting := func(d time.Duration) func() error {
		return func() error { c.Advance(d); return nil }
	}
	waits := func(want ...time.Duration) {
		t.Helper()
		for i, w := range want {
			session(fmt.Sprintf("attempt %d", i+1), refused)
			got := c.nextWait(t, "after a refused attempt")
			if got != w {
				t.Fatalf("wait %d after refused attempts = %v, want %v", i+1, got, w)
			}
			c.Advance(got)
		}
	}
	waits(100*time.Millisecond, 200*time.Millisecond, 400*time.Millisecond, 800*time.Millisecond,
		1600*time.Millisecond, 3200*time.Millisecond, 5*time.Second, 5*time.Second)

	session("a session that lasts 2 s", lasting(2*time.Second))
	session("the attempt right after it", refused)
	if got := c.nextWait(t, "after the lasting session"); got != 100*time.Millisecond {
		t.Fatalf("after a lasting session the delays start again from %v, want 100ms", got)
	}
	c.Advance(100 * time.Millisecond)

	session("a session that ends at once", lasting(2*time.Second-time.Millisecond))
	if got := c.nextWait(t, "after a short session"); got != 200*time.Millisecond {
		t.Fatalf("a session that ended after 1.999 s waits %v, want 200ms (a failure)", got)
	}
	c.Advance(200 * time.Millisecond)
	waits(400 * time.Millisecond)
}

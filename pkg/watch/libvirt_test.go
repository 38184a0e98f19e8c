package watch

import (
	"encoding/binary"
	"io"
	"net"
	"path/filepath"
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

func TestLibvirtReconnectsWithBackoffAndResyncs(t *testing.T) {
	d, sock := newFakeLibvirtd(t)
	src := &Libvirt{Sockets: []string{sock}, Log: quietLog(), MinBackoff: 20 * time.Millisecond, MaxBackoff: 160 * time.Millisecond, DialTimeout: time.Second}
	events, _ := runSource(t, src)

	// A daemon that drops every connection: attempts back off.
	time.Sleep(900 * time.Millisecond)
	at := d.acceptTimes()
	if len(at) < 4 {
		t.Fatalf("%d connection attempts in 900 ms, want at least 4", len(at))
	}
	if len(at) > 12 {
		t.Fatalf("%d connection attempts in 900 ms: no backoff", len(at))
	}
	gaps := make([]time.Duration, len(at)-1)
	for i := range gaps {
		gaps[i] = at[i+1].Sub(at[i])
	}
	if gaps[0] > 80*time.Millisecond || gaps[len(gaps)-1] < 120*time.Millisecond {
		t.Errorf("gaps between attempts %v: want from about 20ms growing to the 160ms cap", gaps)
	}
	t.Logf("gaps between attempts: %v", gaps)
	select {
	case e := <-events:
		t.Fatalf("event %+v without a connection", e)
	default:
	}

	// The daemon is back: a connection, and a resync for what was missed.
	d.setDrop(false)
	expect := func(what string, ok func(Event) bool) {
		t.Helper()
		awaitEvent(t, events, what, ok, func(e Event) { t.Fatalf("got %+v, want %s", e, what) })
	}
	expect("a resync after connecting", func(e Event) bool { return e.Resync })
	d.lifecycle("g1", 4, 1) // resumed, migrated
	expect("g1 migrated", func(e Event) bool { return e.Guest == "g1" && e.Trigger == Migrated })

	// libvirtd restarts: the connection drops, the source reconnects and
	// asks for a resync again.
	d.closeAll()
	expect("a resync after reconnecting", func(e Event) bool { return e.Resync })
	d.lifecycle("g2", 2, 0) // started, booted
	expect("g2 started", func(e Event) bool { return e.Guest == "g2" && e.Trigger == Started })
}

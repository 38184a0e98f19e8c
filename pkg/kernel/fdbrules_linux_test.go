package kernel

import (
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// msgAttr is one attribute of a crafted message.
type msgAttr struct {
	typ uint16
	val []byte
}

func u32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }

// fdbSpec describes a crafted bridge FDB notification, laid out by
// default as fdb_fill_info (Linux 6.2+) lays it out.
type fdbSpec struct {
	typ      uint16
	family   uint8
	index    int
	state    uint16
	flags    uint8
	mac      [6]byte
	ext      uint32
	attrs    []msgAttr // nil: NDA_LLADDR, NDA_MASTER, NDA_FLAGS_EXT, NDA_CACHEINFO
	noAttrs  bool
	bridgeIx int
}

func (f fdbSpec) attributes() []msgAttr {
	if f.noAttrs {
		return nil
	}
	if f.attrs != nil {
		return f.attrs
	}
	return []msgAttr{{unix.NDA_LLADDR, f.mac[:]}, {unix.NDA_MASTER, u32(uint32(f.bridgeIx))},
		{netlink.NDA_FLAGS_EXT, u32(f.ext)}, {unix.NDA_CACHEINFO, make([]byte, sizeofNdaCacheinfo)}}
}

// message builds the notification, header included, with sequence number seq.
func (f fdbSpec) message(seq uint32) []byte {
	if f.typ == 0 {
		f.typ = unix.RTM_NEWNEIGH
	}
	if f.family == 0 {
		f.family = unix.AF_BRIDGE
	}
	body := make([]byte, unix.SizeofNdMsg)
	body[0] = f.family
	binary.NativeEndian.PutUint32(body[4:], uint32(int32(f.index)))
	binary.NativeEndian.PutUint16(body[8:], f.state)
	body[10] = f.flags
	return message(f.typ, seq, body, f.attributes())
}

// message builds a netlink message of type typ: header, body, attributes.
func message(typ uint16, seq uint32, body []byte, attrs []msgAttr) []byte {
	b := make([]byte, unix.NLMSG_HDRLEN, 128)
	b = append(b, body...)
	for _, a := range attrs {
		b = binary.NativeEndian.AppendUint16(b, uint16(unix.SizeofRtAttr+len(a.val)))
		b = binary.NativeEndian.AppendUint16(b, a.typ)
		b = append(b, a.val...)
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
	}
	binary.NativeEndian.PutUint32(b[0:], uint32(len(b)))
	binary.NativeEndian.PutUint16(b[4:], typ)
	binary.NativeEndian.PutUint32(b[8:], seq)
	return b
}

// linkMessage builds an RTM_NEWLINK (or DELLINK) for device index, name, master.
func linkMessage(typ uint16, seq uint32, index int, name string, master int) []byte {
	body := make([]byte, unix.SizeofIfInfomsg)
	binary.NativeEndian.PutUint32(body[4:], uint32(index))
	attrs := []msgAttr{{unix.IFLA_IFNAME, append([]byte(name), 0)}}
	if master != 0 {
		attrs = append(attrs, msgAttr{unix.IFLA_MASTER, u32(uint32(master))})
	}
	return message(typ, seq, body, attrs)
}

var (
	macA = [6]byte{0x52, 0x54, 0x00, 0xaa, 0x00, 0x01}
	macB = [6]byte{0x0a, 0xfd, 0x00, 0x00, 0x12, 0x34}
)

// TestParseNote reads links and bridge FDB entries and refuses what is
// neither: a neighbour of another family, a device's own entry, a message
// cut short.
func TestParseNote(t *testing.T) {
	var n Note
	if !parseNote(linkMessage(unix.RTM_DELLINK, 1, 42, "vnet7", 3), &n) ||
		n.Kind != NoteLink || !n.Deleted || n.Index != 42 || string(n.Name) != "vnet7" || n.Master != 3 {
		t.Errorf("link: %+v", n)
	}
	spec := fdbSpec{typ: unix.RTM_DELNEIGH, index: 9, state: unix.NUD_NOARP, flags: netlink.NTF_STICKY, mac: macA, ext: ntfExtLocked, bridgeIx: 4}
	spec.attrs = append(spec.attributes(), msgAttr{unix.NDA_VLAN, []byte{10, 0}})
	if !parseNote(spec.message(1), &n) || n.Kind != NoteFDB || !n.Deleted || n.Index != 9 || n.State != unix.NUD_NOARP ||
		n.Flags != netlink.NTF_STICKY || n.MAC != macA || n.ExtFlags != ntfExtLocked || n.Master != 4 || n.Vlan != 10 {
		t.Errorf("fdb: %+v", n)
	}
	for what, m := range map[string][]byte{
		"an ARP neighbour":         fdbSpec{family: unix.AF_INET, mac: macA}.message(1),
		"a device's own entry":     fdbSpec{flags: unix.NTF_SELF, mac: macA}.message(1),
		"an entry without its MAC": fdbSpec{noAttrs: true}.message(1),
		"a broken attribute":       append(fdbSpec{noAttrs: true}.message(1), 0xff, 0, 1, 0),
		"a route":                  message(unix.RTM_NEWROUTE, 1, make([]byte, 12), nil),
	} {
		binary.NativeEndian.PutUint32(m[0:], uint32(len(m)))
		if parseNote(m, &n) {
			t.Errorf("%s parsed: %+v", what, n)
		}
	}
}

// TestClassify: each rule keeps what it says and nothing else; without a
// watchlist, only the rules that need none keep anything.
func TestClassify(t *testing.T) {
	wl := &Watchlist{Ports: map[int]string{7: "g"}, MACs: map[[6]byte][]string{macA: {"g"}}}
	rule := func(name string) int {
		return slices.IndexFunc(FDBRules, func(r FDBRule) bool { return r.Name == name })
	}
	for _, c := range []struct {
		what string
		n    Note
		wl   *Watchlist
		want int
	}{
		{"static", Note{State: unix.NUD_NOARP, Index: 3, MAC: macB}, wl, rule("static")},
		{"static, also reachable", Note{State: unix.NUD_NOARP | unix.NUD_REACHABLE, Index: 3, MAC: macB}, wl, rule("static")},
		{"local", Note{State: unix.NUD_PERMANENT, Index: 3, MAC: macB}, wl, -1},
		{"local, noarp too", Note{State: unix.NUD_PERMANENT | unix.NUD_NOARP, Index: 3, MAC: macB}, wl, -1},
		{"learned on the uplink", Note{State: unix.NUD_REACHABLE, Index: 3, MAC: macB}, wl, -1},
		{"aged on the uplink", Note{State: unix.NUD_STALE, Index: 3, MAC: macB}, wl, -1},
		{"locked", Note{State: unix.NUD_REACHABLE, ExtFlags: ntfExtLocked, Index: 3, MAC: macB}, wl, rule("locked")},
		{"managed (not locked)", Note{State: unix.NUD_REACHABLE, ExtFlags: 1, Index: 3, MAC: macB}, wl, -1},
		{"learned on a guest's port", Note{State: unix.NUD_REACHABLE, Index: 7, MAC: macB}, wl, rule("guest port")},
		{"a guest's MAC, dynamic on the uplink", Note{State: unix.NUD_REACHABLE, Index: 3, MAC: macA}, wl, rule("guest MAC")},
		{"a guest's MAC, no watchlist", Note{State: unix.NUD_REACHABLE, Index: 7, MAC: macA}, nil, -1},
		{"static, no watchlist", Note{State: unix.NUD_NOARP, Index: 7, MAC: macA}, nil, rule("static")},
	} {
		if got := classify(FDBRules, &c.n, c.wl); got != c.want {
			t.Errorf("%s: rule %d, want %d", c.what, got, c.want)
		}
	}
}

// TestKeepAllocatesNothing: a notification the rules drop (what a busy
// segment sends by the thousand) and one they keep are parsed and
// classified without an allocation.
func TestKeepAllocatesNothing(t *testing.T) {
	n := &Notifier{}
	wl := &Watchlist{Ports: map[int]string{7: "g"}, MACs: map[[6]byte][]string{macA: {"g"}}}
	dropped := fdbSpec{index: 3, state: unix.NUD_REACHABLE, mac: macB}.message(1)
	kept := fdbSpec{index: 7, state: unix.NUD_REACHABLE, mac: macB}.message(1)
	if n.keep(dropped, wl) || !n.keep(kept, wl) {
		t.Fatal("keep decided wrong")
	}
	if a := testing.AllocsPerRun(1000, func() { n.keep(dropped, wl); n.keep(kept, wl) }); a != 0 {
		t.Errorf("%v allocations per notification pair, want 0", a)
	}
}

// fakeSockopts records socket options and refuses those it is told to.
type fakeSockopts struct {
	set       map[int]int // option → value
	refuse    map[int]error
	rcvbuf    int // what SO_RCVBUF reads back (0: twice what was set)
	getErr    error
	maxFilter int // longest program accepted (0: any)
	attached  []unix.SockFilter
}

func (f *fakeSockopts) setInt(fd, level, opt, v int) error {
	if err := f.refuse[opt]; err != nil {
		return err
	}
	if f.set == nil {
		f.set = map[int]int{}
	}
	f.set[opt] = v
	return nil
}

func (f *fakeSockopts) getInt(fd, level, opt int) (int, error) {
	if f.getErr != nil {
		return 0, f.getErr
	}
	if f.rcvbuf != 0 {
		return f.rcvbuf, nil
	}
	return 2 * max(f.set[unix.SO_RCVBUFFORCE], f.set[unix.SO_RCVBUF]), nil
}

func (f *fakeSockopts) attachFilter(fd int, prog []unix.SockFilter) error {
	if f.maxFilter > 0 && len(prog) > f.maxFilter {
		return unix.ENOMEM
	}
	f.attached = prog
	return nil
}

// TestSizeReceiveBuffer: SO_RCVBUFFORCE first; where it is refused (no
// CAP_NET_ADMIN), SO_RCVBUF, which the kernel caps; what the kernel
// granted is read back; both refused is an error.
func TestSizeReceiveBuffer(t *testing.T) {
	so := &fakeSockopts{}
	got, forced, err := sizeReceiveBuffer(so, 3, 4<<20)
	if err != nil || !forced || got != 8<<20 || so.set[unix.SO_RCVBUF] != 0 {
		t.Errorf("forced: %d %v %v, options %v", got, forced, err, so.set)
	}
	so = &fakeSockopts{refuse: map[int]error{unix.SO_RCVBUFFORCE: unix.EPERM}, rcvbuf: 425984}
	got, forced, err = sizeReceiveBuffer(so, 3, 4<<20)
	if err != nil || forced || got != 425984 || so.set[unix.SO_RCVBUF] != 4<<20 {
		t.Errorf("capped: %d %v %v, options %v", got, forced, err, so.set)
	}
	so = &fakeSockopts{refuse: map[int]error{unix.SO_RCVBUFFORCE: unix.EPERM, unix.SO_RCVBUF: unix.EINVAL}}
	if _, _, err = sizeReceiveBuffer(so, 3, 4<<20); !errors.Is(err, unix.EINVAL) {
		t.Errorf("both refused: %v", err)
	}
	so = &fakeSockopts{getErr: unix.EBADF}
	if _, _, err = sizeReceiveBuffer(so, 3, 4<<20); !errors.Is(err, unix.EBADF) {
		t.Errorf("read back failed: %v", err)
	}
}

// manyWatched names n ports (from 1000, every third index: no runs) and n
// MACs.
func manyWatched(n int) *Watchlist {
	wl := &Watchlist{Ports: map[int]string{}, MACs: map[[6]byte][]string{}}
	for i := range n {
		wl.Ports[1000+3*i] = "g"
		wl.MACs[[6]byte{0x52, 0x54, 0x00, byte(i >> 16), byte(i >> 8), byte(i)}] = []string{"g"}
	}
	return wl
}

// TestAttachRulesLeavesOut: a program that does not fit loses the rules
// that name MACs, then ports, and says so; the static and locked rules
// always stay; a program that fits nowhere is an error.
func TestAttachRulesLeavesOut(t *testing.T) {
	wl := manyWatched(1000)
	all, err := filterProgram(FDBRules, wl)
	if err != nil {
		t.Fatal(err)
	}
	noMAC, _ := filterProgram(FDBRules[:3], wl)
	for _, c := range []struct {
		max  int
		want string
	}{
		{0, "static, locked, guest port, guest MAC|"},
		{len(all), "static, locked, guest port, guest MAC|"},
		{len(all) - 1, "static, locked, guest port|guest MAC"},
		{len(noMAC) - 1, "static, locked|guest port, guest MAC"},
	} {
		so := &fakeSockopts{maxFilter: c.max}
		rep, err := attachRules(so, 3, FDBRules, wl)
		got := strings.Join(rep.Rules, ", ") + "|" + strings.Join(rep.Left, ", ")
		if err != nil || got != c.want || rep.Instructions != len(so.attached) {
			t.Errorf("at most %d instructions: %q (%d instructions, attached %d), %v; want %q", c.max, got, rep.Instructions, len(so.attached), err, c.want)
		}
		if len(rep.Left) > 0 && !errors.Is(rep.Why, unix.ENOMEM) {
			t.Errorf("at most %d instructions: why %v", c.max, rep.Why)
		}
	}
	if _, err := attachRules(&fakeSockopts{maxFilter: 5}, 3, FDBRules, wl); !errors.Is(err, unix.ENOMEM) {
		t.Errorf("nothing fits: %v", err)
	}
	huge := manyWatched(4000)
	rep, err := attachRules(&fakeSockopts{}, 3, FDBRules, huge)
	if err != nil || rep.Instructions > unix.BPF_MAXINSNS || len(rep.Left) == 0 {
		t.Errorf("4000 ports and MACs: %v, %v", rep, err)
	}
}

// TestFilterProgramSize: the program grows by about 1.25 instructions per
// watched key, so 1000 guest ports and 1000 MACs fit the kernel's limit
// with room to spare.
func TestFilterProgramSize(t *testing.T) {
	empty, err := filterProgram(FDBRules, nil)
	if err != nil {
		t.Fatal(err)
	}
	full, err := filterProgram(FDBRules, manyWatched(1000))
	if err != nil {
		t.Fatal(err)
	}
	per := float64(len(full)-len(empty)) / 2000
	if per > 1.3 || len(full) > unix.BPF_MAXINSNS {
		t.Errorf("%d instructions empty, %d for 1000 ports and MACs (%.2f a key)", len(empty), len(full), per)
	}
	t.Logf("%d instructions without a watchlist, %d for 1000 ports and 1000 MACs", len(empty), len(full))
}

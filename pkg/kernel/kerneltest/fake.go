// Package kerneltest is the in-memory kernel every unit test of fdbhook
// runs against (model.Kernel), kept true to the real one by the
// conformance test in pkg/kernel. It models what fdbhook relies on:
//
//   - devices with their bridge port flags; a bridge's vlan_filtering;
//   - port VLANs: a port enslaved to a bridge with a default pvid gets it;
//   - one FDB entry per (bridge, MAC, VLAN): a replace of a MAC that is on
//     another port of the bridge moves the entry; a replace without a VLAN
//     writes VLAN 0 and every VLAN of the port, a delete without one
//     deletes those; a replace keeps an extern_learn flag;
//   - the kernel's errors: ENODEV for a missing device; EOPNOTSUPP for an
//     entry, flags or VLANs on a device that is no bridge port, and for
//     adding VLANs on a kernel without them; ENOENT for the delete of an
//     absent entry (not of an absent VLAN: the kernel ignores that);
//     EINVAL for an entry in a VLAN the port does not have (for a delete,
//     on a kernel with VLANs only), or without a state the kernel keeps
//     (permanent, noarp, reachable).
//
// It does not model the ports' STP state: the kernel refuses a dynamic
// entry on a port that is not learning or forwarding (a port that is down),
// the fake takes it.
//
// Every call is recorded (Calls, Count, Writes, WriteLog), and a test can
// make any call fail (FailWith, FailAt, FailWrite) or change the kernel
// while the code under test runs: the fake is safe for concurrent use.
// Wrap gives the same recording and failures around another kernel, such
// as a real connection; View makes a plan.View of a kernel; T2Host is the
// host the libvirt fixtures come from.
//
// Conform checks the fake against a real kernel: pkg/kernel runs it on the
// development kernel, the VM suite on one with bridge VLANs.
package kerneltest

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/fdbhook/fdbhook/pkg/model"
)

// Kernel is the fake: the kernel's state in memory, behind the recording
// and failures of Wrapped. Its own methods (Add, Move, SetFlags, AddStatic,
// State, …) set the state up and read it back without counting as calls.
type Kernel struct {
	Wrapped
	setup
}

// setup holds the memory one level deeper than Wrapped, so that the
// model.Kernel methods are Wrapped's and the others the memory's.
type setup struct{ *memory }

var _ model.Kernel = (*Kernel)(nil)

// New returns a kernel without devices.
func New() *Kernel {
	m := &memory{vlans: map[int][]model.Vlan{}}
	return &Kernel{Wrapped: Wrapped{K: m}, setup: setup{m}}
}

// memory is the kernel's state.
type memory struct {
	mu      sync.Mutex
	links   []*model.Link
	vlans   map[int][]model.Vlan // by device index
	entries []model.Entry        // Port left empty; filled in by reads
	next    int
	// queue holds the writes of a Pipeline call (nil outside one);
	// pipelined counts the writes carried out that way.
	queue     []func() error
	pipelined int
	nsids     map[int]int // pid → network namespace id
}

// Learning are a new port's flags; Managed those of a managed guest port.
var (
	Learning = model.Flags{Learning: true, Flood: true}
	Managed  = model.Flags{}
)

// Bridge, Tap, Veth and Uplink describe devices for Add.
func Bridge(name string) *model.Link {
	return &model.Link{Name: name, Type: "bridge", VlanCapable: true, StickyCapable: true}
}

func Tap(name, master string, f model.Flags) *model.Link {
	return &model.Link{Name: name, Type: "tuntap", TunMode: "tap", Master: master, Flags: f, Promiscuity: 1, Carrier: true}
}

func Veth(name, master string, f model.Flags) *model.Link {
	return &model.Link{Name: name, Type: "veth", Master: master, Flags: f, Promiscuity: 1, Carrier: true}
}

func Uplink(name, master string) *model.Link {
	return &model.Link{Name: name, Type: "device", Master: master, Flags: Learning, Promiscuity: 1, Carrier: true}
}

// T2Host is the part of the host the libvirt 9.0 fixtures (testdata/
// libvirt-9.0) were captured on that guest t2 uses: bridge br0 (index 2,
// without VLAN filtering) with t2's taps guest-t2-a (10) and vnet7 (12),
// learning and flooding, no FDB entries.
func T2Host() *Kernel {
	k := New()
	k.Add(&model.Link{Name: "br0", Index: 2, Type: "bridge"})
	k.Add(&model.Link{Name: "guest-t2-a", Index: 10, Type: "tuntap", TunMode: "tap", Master: "br0", Flags: Learning})
	k.Add(&model.Link{Name: "vnet7", Index: 12, Type: "tuntap", TunMode: "tap", Master: "br0", Flags: Learning})
	return k
}

// Close changes nothing: the fake outlives every connection to it.
func (k *memory) Close() {}

// The writes: each is carried out at once, or inside Pipeline queued.
func (k *memory) SetVlanFiltering(bridgeIndex int, on bool) error {
	return k.later(func() error { return k.setVlanFiltering(bridgeIndex, on) })
}

func (k *memory) SetPortFlags(portIndex int, f model.Flags, withLocked, withMab bool) error {
	return k.later(func() error { return k.setPortFlags(portIndex, f, withLocked, withMab) })
}

func (k *memory) ReplaceEntry(e model.Entry) error {
	return k.later(func() error { return k.replaceEntry(e) })
}

func (k *memory) DeleteEntry(e model.Entry) error {
	return k.later(func() error { return k.deleteEntry(e) })
}

func (k *memory) AddPortVlans(portIndex int, vlans []model.Vlan) error {
	vlans = slices.Clone(vlans)
	return k.later(func() error { return k.addPortVlans(portIndex, vlans) })
}

func (k *memory) DelPortVlans(portIndex int, vlans []model.Vlan) error {
	vlans = slices.Clone(vlans)
	return k.later(func() error { return k.delPortVlans(portIndex, vlans) })
}

// later carries write out, or inside Pipeline queues it and returns nil.
func (k *memory) later(write func() error) error {
	k.mu.Lock()
	if k.queue != nil {
		k.queue = append(k.queue, write)
		k.mu.Unlock()
		return nil
	}
	k.mu.Unlock()
	return write()
}

// Pipeline runs write, whose writes are queued, then carries them out in
// order, each whatever the others' outcome, and returns their errors, as
// kernel.Conn does with the kernel's answers. One Pipeline at a time.
func (k *memory) Pipeline(write func()) []error {
	k.mu.Lock()
	k.queue = []func() error{}
	k.mu.Unlock()
	write()
	k.mu.Lock()
	queue := k.queue
	k.queue = nil
	k.pipelined += len(queue)
	k.mu.Unlock()
	errs := make([]error, len(queue))
	for i, w := range queue {
		errs[i] = w()
	}
	return errs
}

// Pipelined counts the writes carried out inside Pipeline.
func (k *memory) Pipelined() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.pipelined
}

// SetNetnsID says that process pid lives in the network namespace the
// kernel's gives id (as a container's init does).
func (k *memory) SetNetnsID(pid, id int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.nsids == nil {
		k.nsids = map[int]int{}
	}
	k.nsids[pid] = id
}

// NetnsIDOfPid returns what SetNetnsID said of pid, -1 for another
// process; a pid that cannot be a process's is an error, as in the kernel.
func (k *memory) NetnsIDOfPid(pid int) (int, error) {
	if pid <= 0 {
		return 0, fmt.Errorf("network namespace id of pid %d: not a process id", pid)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if id, ok := k.nsids[pid]; ok {
		return id, nil
	}
	return -1, nil
}

// Prefetch changes nothing: the fake's reads cost no round trips.
func (k *memory) Prefetch(map[string][]string) {}

func (k *memory) byIndex(i int) *model.Link {
	for _, l := range k.links {
		if l.Index == i {
			return l
		}
	}
	return nil
}

func (k *memory) byName(name string) *model.Link {
	for _, l := range k.links {
		if l.Name == name {
			return l
		}
	}
	return nil
}

// bridgeOf returns the bridge a port (or the bridge itself) belongs to.
func (k *memory) bridgeOf(index int) *model.Link {
	l := k.byIndex(index)
	switch {
	case l == nil:
		return nil
	case l.Type == "bridge":
		return l
	}
	return k.byIndex(l.MasterIndex)
}

// Add creates a device and enslaves it to l.Master, and returns it, so a
// test can set more of it up before the code under test runs. A device
// keeps a non-zero l.Index; others get the next free one.
func (k *memory) Add(l *model.Link) *model.Link {
	k.mu.Lock()
	defer k.mu.Unlock()
	if l.Index == 0 {
		l.Index = k.next + 1
	}
	k.next = max(k.next, l.Index)
	k.links = append(k.links, l)
	if l.Type == "bridge" && l.VlanCapable && l.DefaultPvid != 0 {
		k.vlans[l.Index] = []model.Vlan{{ID: l.DefaultPvid, Pvid: true, Untagged: true}}
	}
	k.enslave(l, l.Master)
	return l
}

// enslave makes l a port of bridge master (none: ""). Its VLANs are those
// a new port gets: the bridge's default pvid, if it has VLANs.
func (k *memory) enslave(l *model.Link, master string) {
	l.Master, l.MasterIndex, l.MasterType = "", 0, ""
	delete(k.vlans, l.Index)
	m := k.byName(master)
	if m == nil {
		return
	}
	l.Master, l.MasterIndex, l.MasterType = m.Name, m.Index, "bridge"
	if m.VlanCapable && m.DefaultPvid != 0 {
		k.vlans[l.Index] = []model.Vlan{{ID: m.DefaultPvid, Pvid: true, Untagged: true}}
	}
}

// Device returns the device called name itself, or nil, for a test to set
// up what Add does not (a master of another kind, a capability). Not for
// use while the code under test runs: the fake's lock does not cover it.
func (k *memory) Device(name string) *model.Link {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.byName(name)
}

// Devices returns a copy of every device, without counting as a call.
func (k *memory) Devices() []*model.Link {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make([]*model.Link, len(k.links))
	for i, l := range k.links {
		out[i] = clone(l)
	}
	return out
}

// Delete removes a device and the entries on it, and releases the ports
// of a bridge, as the kernel does.
func (k *memory) Delete(name string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	l := k.byName(name)
	if l == nil {
		return
	}
	k.flush(l.Index)
	delete(k.vlans, l.Index)
	k.links = slices.DeleteFunc(k.links, func(x *model.Link) bool { return x == l })
	for _, p := range k.links {
		if p.MasterIndex == l.Index { // the bridge's ports are released
			k.move(p, "")
		}
	}
}

func (k *memory) flush(portIndex int) {
	k.entries = slices.DeleteFunc(k.entries, func(e model.Entry) bool { return e.PortIndex == portIndex })
}

// Move enslaves a port to another bridge (or none: ""), as the kernel
// does: its entries are flushed, and its flags and VLANs are a new port's;
// a device on no bridge has no port flags.
func (k *memory) Move(port, master string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.move(k.byName(port), master)
}

func (k *memory) move(l *model.Link, master string) {
	k.flush(l.Index)
	k.enslave(l, master)
	l.Flags = Learning
	if l.MasterIndex == 0 {
		l.Flags, l.LockCapable = model.Flags{}, false
	}
}

// SetFlags changes a port's flags behind the code's back.
func (k *memory) SetFlags(port string, f model.Flags) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.byName(port).Flags = f
}

// SetVlans sets a port's VLANs behind the code's back.
func (k *memory) SetVlans(port string, vlans ...model.Vlan) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.vlans[k.byName(port).Index] = slices.Clone(vlans)
}

// AddEntry puts entries (PortIndex, or else Port, names the port) into the
// FDB as they are, each replacing the entry of its MAC and VLAN on the
// bridge: for entries the code under test cannot write, such as
// extern_learn or the bridge's own, and for set-up that must not count as
// a call.
func (k *memory) AddEntry(entries ...model.Entry) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, e := range entries {
		if e.PortIndex == 0 {
			e.PortIndex = k.byName(e.Port).Index
		}
		e.Port = ""
		br := k.bridgeOf(e.PortIndex)
		k.entries = slices.DeleteFunc(k.entries, func(x model.Entry) bool {
			return x.MAC == e.MAC && x.Vlan == e.Vlan && k.bridgeOf(x.PortIndex) == br
		})
		k.entries = append(k.entries, e)
	}
}

// AddStatic adds a static entry for mac on port for VLAN 0, as
// `bridge fdb replace` without a VLAN would, without counting as a call.
func (k *memory) AddStatic(mac, port string) {
	k.AddEntry(model.Entry{MAC: mac, Port: port, State: model.NUDNoARP, NTFlags: model.NTFMaster})
}

// DelStatic deletes the entries for mac on port.
func (k *memory) DelStatic(mac, port string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	l := k.byName(port)
	k.entries = slices.DeleteFunc(k.entries, func(e model.Entry) bool { return e.MAC == mac && e.PortIndex == l.Index })
}

// Learn is a frame with source MAC mac arriving on port, untagged, as the
// kernel's br_fdb_update takes it: on a port that learns, the bridge's
// entry for the MAC (VLAN 0) moves to the port unless it is local or
// sticky (a static entry that is not sticky moves too), and a MAC without
// an entry gets a dynamic one; a port that does not learn changes nothing.
// test/features checks the real kernel against the first two: a frame
// from the uplink moves a plain static entry and not a sticky one. On a
// locked port (br_handle_frame_finish) nothing moves: a MAC without an
// entry gets a locked one when the port has MAB, and the frame is dropped
// (TestFakeConforms checks that against the kernel).
func (k *memory) Learn(port, mac string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	p := k.byName(port)
	if p == nil || p.MasterIndex == 0 {
		return
	}
	if p.Flags.Locked {
		k.lockedFrame(p, mac)
		return
	}
	if !p.Flags.Learning {
		return
	}
	for i, e := range k.entries {
		if e.MAC == mac && e.Vlan == 0 && k.bridgeOf(e.PortIndex) == k.bridgeOf(p.Index) {
			if !e.Local() && e.NTFlags&model.NTFSticky == 0 {
				k.entries[i].PortIndex = p.Index
			}
			return
		}
	}
	k.entries = append(k.entries, model.Entry{MAC: mac, PortIndex: p.Index, State: nudReachable, NTFlags: model.NTFMaster})
}

// lockedFrame is a frame from mac on locked port p: only a MAC without an
// entry on the bridge gets one, locked, when p has MAB (and learns, which
// MAB needs).
func (k *memory) lockedFrame(p *model.Link, mac string) {
	if !p.Flags.Mab || slices.ContainsFunc(k.entries, func(e model.Entry) bool {
		return e.MAC == mac && e.Vlan == 0 && k.bridgeOf(e.PortIndex) == k.bridgeOf(p.Index)
	}) {
		return
	}
	k.entries = append(k.entries, model.Entry{MAC: mac, PortIndex: p.Index, State: nudReachable, NTFlags: model.NTFMaster, FlagsExt: model.NTFExtLocked})
}

// Flags returns a port's flags; ok is false when it does not exist.
func (k *memory) Flags(port string) (f model.Flags, ok bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if l := k.byName(port); l != nil {
		return l.Flags, true
	}
	return model.Flags{}, false
}

// Static returns the names of the ports holding a static entry for mac,
// one per entry (a port with the entry in two VLANs is named twice).
func (k *memory) Static(mac string) []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []string
	for _, e := range k.entries {
		if e.MAC == mac && e.Static() {
			if l := k.byIndex(e.PortIndex); l != nil {
				out = append(out, l.Name)
			}
		}
	}
	slices.Sort(out)
	return out
}

// Index returns a device's index, or 0.
func (k *memory) Index(name string) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	if l := k.byName(name); l != nil {
		return l.Index
	}
	return 0
}

// AllEntries returns every FDB entry, sorted by MAC, VLAN and port.
func (k *memory) AllEntries() []model.Entry {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := k.named(k.entries)
	slices.SortFunc(out, compareEntries)
	return out
}

func compareEntries(a, b model.Entry) int {
	return cmp.Or(cmp.Compare(a.MAC, b.MAC), cmp.Compare(a.Vlan, b.Vlan), cmp.Compare(a.Port, b.Port))
}

// State describes every device's flags, vlan_filtering and VLANs and every
// FDB entry in one deterministic string, to compare the kernel before and
// after a run.
func (k *memory) State() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	var b strings.Builder
	links := slices.Clone(k.links)
	slices.SortFunc(links, func(a, b *model.Link) int { return cmp.Compare(a.Name, b.Name) })
	for _, l := range links {
		fmt.Fprintf(&b, "%s master %q %s", l.Name, l.Master, l.Flags.Words(true))
		if l.Type == "bridge" {
			fmt.Fprintf(&b, " vlan_filtering %v", l.VlanFiltering)
		}
		fmt.Fprintf(&b, " vlans %v\n", k.vlans[l.Index])
	}
	entries := k.named(k.entries)
	slices.SortFunc(entries, compareEntries)
	for _, e := range entries {
		fmt.Fprintf(&b, "%s state %#x flags %#x\n", e, e.State, e.NTFlags)
	}
	return b.String()
}

// named returns a copy of entries with the port names filled in.
func (k *memory) named(entries []model.Entry) []model.Entry {
	out := slices.Clone(entries)
	for i := range out {
		if l := k.byIndex(out[i].PortIndex); l != nil {
			out[i].Port = l.Name
		}
	}
	return out
}

// Link returns a copy of the device called name, or nil.
func (k *memory) Link(name string) (*model.Link, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return clone(k.byName(name)), nil
}

// LinkByIndex returns a copy of the device with that index, or nil.
func (k *memory) LinkByIndex(index int) (*model.Link, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return clone(k.byIndex(index)), nil
}

func clone(l *model.Link) *model.Link {
	if l == nil {
		return nil
	}
	c := *l
	return &c
}

// Links returns a copy of every device.
func (k *memory) Links() ([]*model.Link, error) { return k.Devices(), nil }

// Entries returns the entries for mac on bridge, for VLAN 0 and, on a
// bridge with VLANs, for every VLAN some device has, as kernel.Conn looks
// them up.
func (k *memory) Entries(bridge *model.Link, mac string) ([]model.Entry, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	vids := map[int]bool{0: true}
	if bridge.VlanFiltering || bridge.VlanCapable {
		for _, vl := range k.vlans {
			for _, v := range vl {
				vids[v.ID] = true
			}
		}
	}
	return k.bridgeEntries(bridge.Index, func(e model.Entry) bool { return e.MAC == mac && vids[e.Vlan] }), nil
}

// PortEntries returns the entries of bridge on port.
func (k *memory) PortEntries(bridge, port *model.Link) ([]model.Entry, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.bridgeEntries(bridge.Index, func(e model.Entry) bool { return e.PortIndex == port.Index }), nil
}

// BridgeEntries returns every entry of bridge.
func (k *memory) BridgeEntries(bridge *model.Link) ([]model.Entry, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.bridgeEntries(bridge.Index, func(model.Entry) bool { return true }), nil
}

func (k *memory) bridgeEntries(bridgeIndex int, keep func(model.Entry) bool) []model.Entry {
	var out []model.Entry
	for _, e := range k.entries {
		if br := k.bridgeOf(e.PortIndex); br != nil && br.Index == bridgeIndex && keep(e) {
			out = append(out, e)
		}
	}
	return k.named(out)
}

// PortVlans returns the VLANs of a port, sorted by ID.
func (k *memory) PortVlans(portIndex int) ([]model.Vlan, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.vlans[portIndex]), nil
}

// setVlanFiltering switches a bridge's vlan_filtering; a kernel without
// bridge VLANs refuses either way.
func (k *memory) setVlanFiltering(bridgeIndex int, on bool) error {
	return k.change(bridgeIndex, func(l *model.Link) bool { return l.VlanCapable },
		func(l *model.Link) { l.VlanFiltering = on })
}

// setPortFlags sets learning and flood, and locked when withLocked; a
// link outside any bridge has no port flags.
// setPortFlags sets the flags as the kernel's br_setport does: MAB on a
// port that does not learn or is not locked, as the whole message leaves
// it, is EINVAL and changes nothing; turning MAB off flushes the port's
// locked entries.
func (k *memory) setPortFlags(portIndex int, f model.Flags, withLocked, withMab bool) error {
	var invalid bool
	err := k.change(portIndex, func(l *model.Link) bool { return l.MasterIndex != 0 && (!withMab || l.MabCapable) },
		func(l *model.Link) {
			if !withLocked {
				f.Locked = l.Flags.Locked
			}
			if !withMab {
				f.Mab = l.Flags.Mab
			}
			if f.Mab && !(f.Learning && f.Locked) {
				invalid = true
				return
			}
			if l.Flags.Mab && !f.Mab {
				k.entries = slices.DeleteFunc(k.entries, func(e model.Entry) bool { return e.PortIndex == l.Index && e.Locked() })
			}
			l.Flags = f
		})
	if err == nil && invalid {
		return unix.EINVAL
	}
	return err
}

// change applies set to the link with the index, as the kernel would:
// ENODEV when there is none, EOPNOTSUPP when it cannot take the change.
func (k *memory) change(index int, can func(*model.Link) bool, set func(*model.Link)) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	l := k.byIndex(index)
	switch {
	case l == nil:
		return unix.ENODEV
	case !can(l):
		return unix.EOPNOTSUPP
	}
	set(l)
	return nil
}

// replaceEntry writes e on its port's bridge, for e.Vlan or, when that is
// 0, for VLAN 0 and every VLAN of the port.
func (k *memory) replaceEntry(e model.Entry) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	vids, err := k.entryVlans(e)
	if err != nil {
		return err
	}
	for _, vid := range vids {
		k.replace(e, vid)
	}
	return nil
}

// entryVlans returns the VLANs a write or delete of e is for.
func (k *memory) entryVlans(e model.Entry) ([]int, error) {
	p := k.byIndex(e.PortIndex)
	switch {
	case p == nil:
		return nil, unix.ENODEV
	case p.MasterIndex == 0:
		return nil, unix.EOPNOTSUPP
	case e.State&(model.NUDPermanent|model.NUDNoARP|nudReachable) == 0:
		return nil, unix.EINVAL // the kernel wants a state it can keep
	}
	if e.Vlan != 0 {
		if !slices.ContainsFunc(k.vlans[p.Index], func(v model.Vlan) bool { return v.ID == e.Vlan }) {
			return nil, unix.EINVAL
		}
		return []int{e.Vlan}, nil
	}
	vids := []int{0}
	for _, v := range k.vlans[p.Index] {
		vids = append(vids, v.ID)
	}
	return vids, nil
}

// replace writes e for one VLAN: the entry of the MAC on the bridge moves
// to e's port and takes e's state and sticky flag; an extern_learn flag
// stays, as it does in the kernel. A write with extern_learn is the
// kernel's other path: it marks an entry extern_learn and changes nothing
// else, or makes a new one, dynamic.
func (k *memory) replace(e model.Entry, vid int) {
	br := k.bridgeOf(e.PortIndex)
	state := e.State
	if state&(model.NUDPermanent|model.NUDNoARP) == 0 {
		state = nudReachable // a dynamic entry, fresh
	}
	flags := model.NTFMaster | e.NTFlags&model.NTFSticky
	ext := e.NTFlags & model.NTFExtLearn
	if ext != 0 {
		state, flags = nudReachable, model.NTFMaster|ext
	}
	for i, x := range k.entries {
		if x.MAC == e.MAC && x.Vlan == vid && k.bridgeOf(x.PortIndex) == br {
			k.entries[i].PortIndex = e.PortIndex
			if ext != 0 {
				k.entries[i].NTFlags |= ext
			} else {
				k.entries[i].State, k.entries[i].NTFlags = state, flags|x.NTFlags&model.NTFExtLearn
			}
			// A normal entry replacing a locked one authorises the MAC.
			k.entries[i].FlagsExt &^= model.NTFExtLocked
			return
		}
	}
	k.entries = append(k.entries, model.Entry{MAC: e.MAC, PortIndex: e.PortIndex, Vlan: vid, State: state, NTFlags: flags})
}

// nudReachable is NUD_REACHABLE, the state of a fresh dynamic entry.
const nudReachable = 0x02

// deleteEntry deletes the entry for e.MAC on e's port, for e.Vlan or, when
// that is 0, for VLAN 0 and every VLAN of the port; ENOENT when there was
// none.
func (k *memory) deleteEntry(e model.Entry) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	p := k.byIndex(e.PortIndex)
	switch {
	case p == nil:
		return unix.ENODEV
	case p.MasterIndex == 0:
		return unix.EOPNOTSUPP
	case e.Vlan != 0 && k.bridgeOf(p.Index).VlanCapable && !slices.ContainsFunc(k.vlans[p.Index], func(v model.Vlan) bool { return v.ID == e.Vlan }):
		return unix.EINVAL // a kernel with VLANs checks the port has it
	}
	vids := []int{e.Vlan}
	if e.Vlan == 0 {
		for _, v := range k.vlans[p.Index] {
			vids = append(vids, v.ID)
		}
	}
	n := len(k.entries)
	k.entries = slices.DeleteFunc(k.entries, func(x model.Entry) bool {
		return x.MAC == e.MAC && x.PortIndex == e.PortIndex && slices.Contains(vids, x.Vlan)
	})
	if len(k.entries) == n {
		return unix.ENOENT
	}
	return nil
}

// addPortVlans adds vlans to a port or updates their flags; a VLAN added
// as pvid takes the pvid from the port's other VLANs.
func (k *memory) addPortVlans(portIndex int, vlans []model.Vlan) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.vlanPort(portIndex); err != nil {
		return err
	}
	have := k.vlans[portIndex]
	for _, v := range vlans {
		if v.Pvid {
			for i := range have {
				have[i].Pvid = false
			}
		}
		have = append(slices.DeleteFunc(have, func(x model.Vlan) bool { return x.ID == v.ID }), v)
	}
	slices.SortFunc(have, func(a, b model.Vlan) int { return cmp.Compare(a.ID, b.ID) })
	k.vlans[portIndex] = have
	return nil
}

// delPortVlans removes vlans from a port, and the port's dynamic entries
// in them (static ones stay, as in the kernel). A VLAN the port does not
// have is no error, nor is a kernel without VLANs: the kernel ignores both.
func (k *memory) delPortVlans(portIndex int, vlans []model.Vlan) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.vlanPort(portIndex); err != nil && (!errors.Is(err, unix.EOPNOTSUPP) || k.bridgeOf(portIndex) == nil) {
		return err
	}
	for _, v := range vlans {
		k.vlans[portIndex] = slices.DeleteFunc(k.vlans[portIndex], func(x model.Vlan) bool { return x.ID == v.ID })
		k.entries = slices.DeleteFunc(k.entries, func(e model.Entry) bool {
			return e.PortIndex == portIndex && e.Vlan == v.ID && !e.Static() && !e.Local()
		})
	}
	return nil
}

// vlanPort checks that a device can have VLANs: a bridge or a port of a
// bridge, on a kernel with bridge VLANs (EOPNOTSUPP otherwise).
func (k *memory) vlanPort(index int) error {
	br := k.bridgeOf(index)
	switch {
	case k.byIndex(index) == nil:
		return unix.ENODEV
	case br == nil, !br.VlanCapable:
		return unix.EOPNOTSUPP
	}
	return nil
}

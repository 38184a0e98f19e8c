// Package kerneltest is a fake kernel for tests of code that reads links
// and bridge FDBs and applies plans (admin.Kernel): a replace moves a
// MAC's entry on a bridge to the new port, a delete of an absent entry is
// ENOENT, a write to a missing device is ENODEV. It is safe for
// concurrent use, so a test can change it while the code under test runs.
package kerneltest

import (
	"slices"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/fdbhook/fdbhook/pkg/model"
)

// Kernel is the fake.
type Kernel struct {
	mu      sync.Mutex
	links   []*model.Link
	entries []model.Entry
	next    int
	writes  int
}

// Writes counts the changes made through the Writer methods.
func (k *Kernel) Writes() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.writes
}

// Learning are a new port's flags; Managed those of a managed guest port.
var (
	Learning = model.Flags{Learning: true, Flood: true}
	Managed  = model.Flags{}
)

// Bridge, Tap and Uplink describe devices for Add.
func Bridge(name string) *model.Link {
	return &model.Link{Name: name, Type: "bridge", VlanCapable: true, StickyCapable: true}
}

func Tap(name, master string, f model.Flags) *model.Link {
	return &model.Link{Name: name, Type: "tuntap", TunMode: "tap", Master: master, Flags: f, Promiscuity: 1, Carrier: true}
}

func Uplink(name, master string) *model.Link {
	return &model.Link{Name: name, Type: "device", Master: master, Flags: Learning, Promiscuity: 1, Carrier: true}
}

// Close does nothing: the fake outlives every connection to it.
func (k *Kernel) Close() {}

func (k *Kernel) byIndex(i int) *model.Link {
	for _, l := range k.links {
		if l.Index == i {
			return l
		}
	}
	return nil
}

func (k *Kernel) byName(name string) *model.Link {
	for _, l := range k.links {
		if l.Name == name {
			return l
		}
	}
	return nil
}

func (k *Kernel) bridgeOf(portIndex int) int {
	l := k.byIndex(portIndex)
	switch {
	case l == nil:
		return 0
	case l.Type == "bridge":
		return l.Index
	}
	return l.MasterIndex
}

// Add creates a device (a new index) and enslaves it to l.Master.
func (k *Kernel) Add(l *model.Link) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.next++
	l.Index = k.next
	k.enslave(l, l.Master)
	k.links = append(k.links, l)
}

func (k *Kernel) enslave(l *model.Link, master string) {
	l.Master, l.MasterIndex, l.MasterType = "", 0, ""
	if m := k.byName(master); m != nil {
		l.Master, l.MasterIndex, l.MasterType = m.Name, m.Index, "bridge"
	}
}

// Delete removes a device and the entries on it, as the kernel does.
func (k *Kernel) Delete(name string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	l := k.byName(name)
	if l == nil {
		return
	}
	k.flush(l.Index)
	k.links = slices.DeleteFunc(k.links, func(x *model.Link) bool { return x == l })
}

func (k *Kernel) flush(portIndex int) {
	k.entries = slices.DeleteFunc(k.entries, func(e model.Entry) bool { return e.PortIndex == portIndex })
}

// Move enslaves a port to another bridge (or none: ""), as the kernel
// does: its entries are flushed and its flags are the defaults.
func (k *Kernel) Move(port, master string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	l := k.byName(port)
	k.flush(l.Index)
	k.enslave(l, master)
	l.Flags = Learning
}

// SetFlags changes a port's flags behind the code's back.
func (k *Kernel) SetFlags(port string, f model.Flags) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.byName(port).Flags = f
}

// AddStatic adds a static entry for mac on port (moving any on the bridge).
func (k *Kernel) AddStatic(mac, port string) {
	k.mu.Lock()
	l := k.byName(port)
	k.mu.Unlock()
	k.ReplaceEntry(model.Entry{MAC: mac, PortIndex: l.Index, State: model.NUDNoARP, NTFlags: model.NTFMaster})
}

// DelStatic deletes the entries for mac on port.
func (k *Kernel) DelStatic(mac, port string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	l := k.byName(port)
	k.entries = slices.DeleteFunc(k.entries, func(e model.Entry) bool { return e.MAC == mac && e.PortIndex == l.Index })
}

// Flags returns a port's flags; ok is false when it does not exist.
func (k *Kernel) Flags(port string) (f model.Flags, ok bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if l := k.byName(port); l != nil {
		return l.Flags, true
	}
	return model.Flags{}, false
}

// Static returns the names of the ports holding a static entry for mac.
func (k *Kernel) Static(mac string) []string {
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
func (k *Kernel) Index(name string) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	if l := k.byName(name); l != nil {
		return l.Index
	}
	return 0
}

// Links implements admin.Reader.
func (k *Kernel) Links() ([]*model.Link, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make([]*model.Link, len(k.links))
	for i, l := range k.links {
		c := *l
		out[i] = &c
	}
	return out, nil
}

// BridgeEntries implements admin.Reader.
func (k *Kernel) BridgeEntries(br *model.Link) ([]model.Entry, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []model.Entry
	for _, e := range k.entries {
		if k.bridgeOf(e.PortIndex) == br.Index {
			e.Port = k.byIndex(e.PortIndex).Name
			out = append(out, e)
		}
	}
	return out, nil
}

// SetVlanFiltering implements apply.Writer.
func (k *Kernel) SetVlanFiltering(bridgeIndex int, on bool) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.writes++
	l := k.byIndex(bridgeIndex)
	if l == nil {
		return unix.ENODEV
	}
	l.VlanFiltering = on
	return nil
}

// SetPortFlags implements apply.Writer.
func (k *Kernel) SetPortFlags(portIndex int, f model.Flags, withLocked bool) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.writes++
	l := k.byIndex(portIndex)
	if l == nil {
		return unix.ENODEV
	}
	if !withLocked {
		f.Locked = l.Flags.Locked
	}
	l.Flags = f
	return nil
}

// ReplaceEntry implements apply.Writer.
func (k *Kernel) ReplaceEntry(e model.Entry) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.writes++
	br := k.bridgeOf(e.PortIndex)
	if br == 0 {
		return unix.ENODEV
	}
	k.entries = slices.DeleteFunc(k.entries, func(x model.Entry) bool {
		return x.MAC == e.MAC && x.Vlan == e.Vlan && k.bridgeOf(x.PortIndex) == br
	})
	e.Port = ""
	k.entries = append(k.entries, e)
	return nil
}

// DeleteEntry implements apply.Writer.
func (k *Kernel) DeleteEntry(e model.Entry) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.writes++
	n := len(k.entries)
	k.entries = slices.DeleteFunc(k.entries, func(x model.Entry) bool {
		return x.MAC == e.MAC && x.PortIndex == e.PortIndex && (e.Vlan == 0 || x.Vlan == e.Vlan)
	})
	if len(k.entries) == n {
		return unix.ENOENT
	}
	return nil
}

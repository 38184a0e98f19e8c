package kerneltest

import (
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/fdbhook/fdbhook/pkg/model"
)

// Call is one call of a model.Kernel method, as recorded.
type Call struct {
	// N numbers the call among every call (from 1); W among the writes
	// (from 1; 0 for a read or Close).
	N, W   int
	Method string // "ReplaceEntry", "Links", "Close", …
	Write  bool
	// What the call is about, where it says: a device by Name or Index (a
	// port, or the bridge of SetVlanFiltering, Entries, BridgeEntries), an
	// entry's MAC and VLAN, flags, VLANs, vlan_filtering.
	Name       string
	Index      int
	MAC        string
	Vlan       int
	Flags      model.Flags
	WithLocked bool
	WithMab    bool
	Vlans      []model.Vlan
	On         bool
}

// String is the short form tests compare: "flags", "vlan", "replace MAC",
// "delete MAC", "addvlans", "delvlans" for the writes, the method's name
// for the others.
func (c Call) String() string {
	switch c.Method {
	case "SetPortFlags":
		return "flags"
	case "SetVlanFiltering":
		return "vlan"
	case "ReplaceEntry":
		return "replace " + c.MAC
	case "DeleteEntry":
		return "delete " + c.MAC
	case "AddPortVlans":
		return "addvlans"
	case "DelPortVlans":
		return "delvlans"
	}
	return c.Method
}

// ErrInjected is the error of a call made to fail by FailAt or FailWrite.
// It wraps EIO too, an error the code under test cannot take for "gone".
var ErrInjected = errors.New("injected failure")

// FailAt fails call number n (from 1), reads and writes counted.
func FailAt(n int) func(Call) error {
	return func(c Call) error {
		if c.N == n {
			return Injected(c)
		}
		return nil
	}
}

// FailWrite fails write number n (from 1).
func FailWrite(n int) func(Call) error {
	return func(c Call) error {
		if c.W == n {
			return Injected(c)
		}
		return nil
	}
}

// Injected is the error FailAt and FailWrite give call c.
func Injected(c Call) error {
	return fmt.Errorf("%w at call %d (%s): %w", ErrInjected, c.N, c.Method, unix.EIO)
}

// recorder records calls and asks the failure hook about each one.
type recorder struct {
	rmu    sync.Mutex
	calls  []Call
	writes int
	fail   func(Call) error
}

// FailWith makes fail decide, before each call is carried out, whether it
// fails: a non-nil error is returned instead. fail runs without any lock
// held, so it may change the kernel (a device vanishing mid-run); nil
// stops the failures.
func (r *recorder) FailWith(fail func(Call) error) {
	r.rmu.Lock()
	defer r.rmu.Unlock()
	r.fail = fail
}

func (r *recorder) record(c Call) error {
	r.rmu.Lock()
	c.N = len(r.calls) + 1
	if c.Write {
		r.writes++
		c.W = r.writes
	}
	r.calls = append(r.calls, c)
	fail := r.fail
	r.rmu.Unlock()
	if fail != nil {
		return fail(c)
	}
	return nil
}

// Calls returns every call so far, in order.
func (r *recorder) Calls() []Call {
	r.rmu.Lock()
	defer r.rmu.Unlock()
	return append([]Call(nil), r.calls...)
}

// WriteLog returns the writes so far, in their short form (Call.String).
func (r *recorder) WriteLog() []string {
	var out []string
	for _, c := range r.Calls() {
		if c.Write {
			out = append(out, c.String())
		}
	}
	return out
}

// Writes counts the writes so far, failed ones included.
func (r *recorder) Writes() int {
	r.rmu.Lock()
	defer r.rmu.Unlock()
	return r.writes
}

// Count counts the calls of method so far.
func (r *recorder) Count(method string) int {
	n := 0
	for _, c := range r.Calls() {
		if c.Method == method {
			n++
		}
	}
	return n
}

// Wrapped is another kernel (a real connection, say) with the fake's
// recording and failures around it.
type Wrapped struct {
	recorder
	K model.Kernel
}

var _ model.Kernel = (*Wrapped)(nil)

// Wrap records the calls made to k and fails those fail says (nil: none).
func Wrap(k model.Kernel, fail func(Call) error) *Wrapped {
	w := &Wrapped{K: k}
	w.fail = fail
	return w
}

func (w *Wrapped) Close() {
	_ = w.record(Call{Method: "Close"})
	w.K.Close()
}

func (w *Wrapped) Link(name string) (*model.Link, error) {
	if err := w.record(Call{Method: "Link", Name: name}); err != nil {
		return nil, err
	}
	return w.K.Link(name)
}

func (w *Wrapped) LinkByIndex(index int) (*model.Link, error) {
	if err := w.record(Call{Method: "LinkByIndex", Index: index}); err != nil {
		return nil, err
	}
	return w.K.LinkByIndex(index)
}

func (w *Wrapped) NetnsIDOfPid(pid int) (int, error) {
	if err := w.record(Call{Method: "NetnsIDOfPid", Index: pid}); err != nil {
		return 0, err
	}
	return w.K.NetnsIDOfPid(pid)
}

func (w *Wrapped) Prefetch(ports map[string][]string) {
	if w.record(Call{Method: "Prefetch"}) == nil {
		w.K.Prefetch(ports)
	}
}

// Pipeline is no call of its own: the writes inside it are recorded, and a
// write made to fail returns its error at once, never queued.
func (w *Wrapped) Pipeline(write func()) []error { return w.K.Pipeline(write) }

func (w *Wrapped) Links() ([]*model.Link, error) {
	if err := w.record(Call{Method: "Links"}); err != nil {
		return nil, err
	}
	return w.K.Links()
}

func (w *Wrapped) Entries(bridge *model.Link, mac string) ([]model.Entry, error) {
	if err := w.record(Call{Method: "Entries", Index: bridge.Index, MAC: mac}); err != nil {
		return nil, err
	}
	return w.K.Entries(bridge, mac)
}

func (w *Wrapped) PortEntries(bridge, port *model.Link) ([]model.Entry, error) {
	if err := w.record(Call{Method: "PortEntries", Index: port.Index}); err != nil {
		return nil, err
	}
	return w.K.PortEntries(bridge, port)
}

func (w *Wrapped) BridgeEntries(bridge *model.Link) ([]model.Entry, error) {
	if err := w.record(Call{Method: "BridgeEntries", Index: bridge.Index}); err != nil {
		return nil, err
	}
	return w.K.BridgeEntries(bridge)
}

func (w *Wrapped) PortVlans(portIndex int) ([]model.Vlan, error) {
	if err := w.record(Call{Method: "PortVlans", Index: portIndex}); err != nil {
		return nil, err
	}
	return w.K.PortVlans(portIndex)
}

func (w *Wrapped) SetVlanFiltering(bridgeIndex int, on bool) error {
	if err := w.record(Call{Method: "SetVlanFiltering", Write: true, Index: bridgeIndex, On: on}); err != nil {
		return err
	}
	return w.K.SetVlanFiltering(bridgeIndex, on)
}

func (w *Wrapped) SetPortFlags(portIndex int, f model.Flags, withLocked, withMab bool) error {
	if err := w.record(Call{Method: "SetPortFlags", Write: true, Index: portIndex, Flags: f, WithLocked: withLocked, WithMab: withMab}); err != nil {
		return err
	}
	return w.K.SetPortFlags(portIndex, f, withLocked, withMab)
}

func (w *Wrapped) ReplaceEntry(e model.Entry) error {
	if err := w.record(Call{Method: "ReplaceEntry", Write: true, Index: e.PortIndex, MAC: e.MAC, Vlan: e.Vlan}); err != nil {
		return err
	}
	return w.K.ReplaceEntry(e)
}

func (w *Wrapped) DeleteEntry(e model.Entry) error {
	if err := w.record(Call{Method: "DeleteEntry", Write: true, Index: e.PortIndex, MAC: e.MAC, Vlan: e.Vlan}); err != nil {
		return err
	}
	return w.K.DeleteEntry(e)
}

func (w *Wrapped) AddPortVlans(portIndex int, vlans []model.Vlan) error {
	if err := w.record(Call{Method: "AddPortVlans", Write: true, Index: portIndex, Vlans: vlans}); err != nil {
		return err
	}
	return w.K.AddPortVlans(portIndex, vlans)
}

func (w *Wrapped) DelPortVlans(portIndex int, vlans []model.Vlan) error {
	if err := w.record(Call{Method: "DelPortVlans", Write: true, Index: portIndex, Vlans: vlans}); err != nil {
		return err
	}
	return w.K.DelPortVlans(portIndex, vlans)
}

// View is a plan.View made of a kernel and libvirt's networks and port
// owners written down by hand (none unless set).
type View struct {
	model.Reader
	Networks map[string]*model.Network
	Owners   map[string]string // port → running guest
}

func (v View) Network(name string) (*model.Network, error) { return v.Networks[name], nil }
func (v View) PortOwner(port string) (string, error)       { return v.Owners[port], nil }

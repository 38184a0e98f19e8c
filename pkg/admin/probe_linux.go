package admin

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/fdbhook/fdbhook/pkg/kernel"
	"github.com/fdbhook/fdbhook/pkg/model"
)

// newPrivateNetns creates a network namespace that has no name and no
// mount: it disappears when the returned handle and every socket opened in
// it are closed. The calling goroutine's thread is switched back at once.
func newPrivateNetns() (netns.NsHandle, error) {
	type result struct {
		ns  netns.NsHandle
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{netns.None(), err}
			return
		}
		defer orig.Close()
		ns, err := netns.New()
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{netns.None(), err}
			return
		}
		if err := netns.Set(orig); err != nil {
			// The thread is stuck in the new namespace: let it die with
			// the goroutine rather than return it to the scheduler.
			ns.Close()
			ch <- result{netns.None(), fmt.Errorf("returning from the probe namespace: %w", err)}
			return
		}
		runtime.UnlockOSThread()
		ch <- result{ns, nil}
	}()
	r := <-ch
	return r.ns, r.err
}

// ProbeKernel builds a bridge with one veth port in a private network
// namespace and tries each bridge feature fdbhook uses or reports on,
// through the same kernel code the hooks use. Nothing outside that
// namespace is touched, and it is gone when the probe returns.
func ProbeKernel(timeout time.Duration) Probe {
	ns, err := newPrivateNetns()
	if err != nil {
		return Probe{Err: fmt.Errorf("creating a private network namespace: %w", err)}
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return Probe{Err: err}
	}
	defer h.Close()
	k, err := kernel.Open(ns, timeout)
	if err != nil {
		return Probe{Err: err}
	}
	defer k.Close()
	pl, err := newProbeLab(h, k)
	if err != nil {
		return Probe{Err: err}
	}
	return Probe{
		Flags:         pl.flags(),
		Static:        pl.static(),
		Sticky:        pl.sticky(),
		Locked:        pl.locked(),
		Mab:           pl.mab(),
		VlanFiltering: pl.vlanFiltering(),
	}
}

// probeLab is a throwaway bridge with one port, in the probe's namespace.
type probeLab struct {
	k        *kernel.Conn
	br, port *model.Link
}

func newProbeLab(h *netlink.Handle, k *kernel.Conn) (*probeLab, error) {
	if err := h.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "probe-br"}}); err != nil {
		return nil, fmt.Errorf("creating a bridge: %w", err)
	}
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "probe-p0"}, PeerName: "probe-p1"}); err != nil {
		return nil, fmt.Errorf("creating a veth pair: %w", err)
	}
	br, err := k.Link("probe-br")
	if err != nil || br == nil {
		return nil, fmt.Errorf("reading the probe bridge: %v", err)
	}
	port, err := k.Link("probe-p0")
	if err != nil || port == nil {
		return nil, fmt.Errorf("reading the probe port: %v", err)
	}
	if err := h.LinkSetMasterByIndex(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: port.Index}}, br.Index); err != nil {
		return nil, fmt.Errorf("enslaving the probe port: %w", err)
	}
	return &probeLab{k: k, br: br, port: port}, nil
}

// read dumps the links and returns the one with index.
func (pl *probeLab) read(index int) (*model.Link, error) {
	links, err := pl.k.Links()
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(links, func(l *model.Link) bool { return l.Index == index })
	if i < 0 {
		return nil, errors.New("probe device vanished")
	}
	return links[i], nil
}

// flags turns learning and unicast_flood off and reads them back.
func (pl *probeLab) flags() error {
	if err := pl.k.SetPortFlags(pl.port.Index, model.Flags{}, false, false); err != nil {
		return err
	}
	l, err := pl.read(pl.port.Index)
	if err != nil {
		return err
	}
	if l.Flags != (model.Flags{}) {
		return fmt.Errorf("port still has %s", l.Flags)
	}
	return nil
}

// entry writes a static entry for mac with extra flags ntf on the port and
// reads it back.
func (pl *probeLab) entry(mac string, ntf int) (*model.Entry, error) {
	e := model.Entry{MAC: mac, PortIndex: pl.port.Index, State: model.NUDNoARP, NTFlags: model.NTFMaster | ntf}
	if err := pl.k.ReplaceEntry(e); err != nil {
		return nil, err
	}
	all, err := pl.k.BridgeEntries(pl.br)
	if err != nil {
		return nil, err
	}
	for _, x := range all {
		if x.MAC == mac && x.PortIndex == pl.port.Index {
			return &x, nil
		}
	}
	return nil, fmt.Errorf("the entry was not there when read back: %v", all)
}

func (pl *probeLab) static() error {
	e, err := pl.entry("02:00:00:00:00:01", 0)
	if err == nil && !e.Static() {
		err = fmt.Errorf("read back as %s", e)
	}
	return err
}

func (pl *probeLab) sticky() error {
	e, err := pl.entry("02:00:00:00:00:02", model.NTFSticky)
	if err == nil && e.NTFlags&model.NTFSticky == 0 {
		err = errors.New("read back without the sticky flag")
	}
	return err
}

// locked locks the port, leaving learning and flooding as they are, and
// reads it back.
func (pl *probeLab) locked() error {
	l, err := pl.read(pl.port.Index)
	if err != nil {
		return err
	}
	if err := pl.k.SetPortFlags(pl.port.Index, model.Flags{Learning: l.Flags.Learning, Flood: l.Flags.Flood, Locked: true}, true, false); err != nil {
		return err
	}
	l, err = pl.read(pl.port.Index)
	switch {
	case err != nil:
		return err
	case !l.LockCapable:
		return errors.New("the kernel does not report the locked flag")
	case !l.Flags.Locked:
		return errors.New("read back unlocked")
	}
	return nil
}

// mab turns MAC Authentication Bypass on, with learning and locked, which
// MAB needs, and reads it back; a kernel that does not report the flag
// (before Linux 6.2) is never sent it.
func (pl *probeLab) mab() error {
	l, err := pl.read(pl.port.Index)
	switch {
	case err != nil:
		return err
	case !l.MabCapable:
		return errors.New("the kernel does not report the mab flag")
	}
	if err := pl.k.SetPortFlags(pl.port.Index, model.Reporting, true, true); err != nil {
		return err
	}
	if l, err = pl.read(pl.port.Index); err != nil {
		return err
	} else if l.Flags != model.Reporting {
		return fmt.Errorf("read back as %s", l.Flags.WordsMab(true, true))
	}
	return nil
}

// vlanFiltering turns the bridge's vlan_filtering on and reads it back.
func (pl *probeLab) vlanFiltering() error {
	if !pl.br.VlanCapable {
		return errors.New("the bridge reports no default PVID")
	}
	if err := pl.k.SetVlanFiltering(pl.br.Index, true); err != nil {
		return err
	}
	if br, err := pl.read(pl.br.Index); err != nil {
		return err
	} else if !br.VlanFiltering {
		return errors.New("read back with vlan_filtering off")
	}
	return nil
}

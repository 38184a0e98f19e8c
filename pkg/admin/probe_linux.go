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
	"github.com/fdbhook/fdbhook/pkg/plan"
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

	if err := h.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "probe-br"}}); err != nil {
		return Probe{Err: fmt.Errorf("creating a bridge: %w", err)}
	}
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "probe-p0"}, PeerName: "probe-p1"}); err != nil {
		return Probe{Err: fmt.Errorf("creating a veth pair: %w", err)}
	}
	br, err := k.Link("probe-br")
	if err != nil || br == nil {
		return Probe{Err: fmt.Errorf("reading the probe bridge: %v", err)}
	}
	port, err := k.Link("probe-p0")
	if err != nil || port == nil {
		return Probe{Err: fmt.Errorf("reading the probe port: %v", err)}
	}
	if err := h.LinkSetMasterByIndex(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: port.Index}}, br.Index); err != nil {
		return Probe{Err: fmt.Errorf("enslaving the probe port: %w", err)}
	}
	readPort := func() (*plan.Link, error) {
		links, err := k.Links()
		if err != nil {
			return nil, err
		}
		i := slices.IndexFunc(links, func(l *plan.Link) bool { return l.Index == port.Index })
		if i < 0 {
			return nil, errors.New("probe port vanished")
		}
		return links[i], nil
	}
	var p Probe

	// learning and unicast_flood off, read back.
	p.Flags = func() error {
		if err := k.SetPortFlags(port.Index, plan.Flags{}, false); err != nil {
			return err
		}
		l, err := readPort()
		if err != nil {
			return err
		}
		if l.Flags != (plan.Flags{}) {
			return fmt.Errorf("port still has %s", l.Flags)
		}
		return nil
	}()

	entry := func(mac string, ntf int) (*plan.Entry, error) {
		e := plan.Entry{MAC: mac, PortIndex: port.Index, State: plan.NUDNoARP, NTFlags: plan.NTFMaster | ntf}
		if err := k.ReplaceEntry(e); err != nil {
			return nil, err
		}
		all, err := k.BridgeEntries(br)
		if err != nil {
			return nil, err
		}
		for _, x := range all {
			if x.MAC == mac && x.PortIndex == port.Index {
				return &x, nil
			}
		}
		return nil, fmt.Errorf("the entry was not there when read back: %v", all)
	}
	p.Static = func() error {
		e, err := entry("02:00:00:00:00:01", 0)
		if err == nil && !e.Static() {
			err = fmt.Errorf("read back as %s", e)
		}
		return err
	}()
	p.Sticky = func() error {
		e, err := entry("02:00:00:00:00:02", plan.NTFSticky)
		if err == nil && e.NTFlags&plan.NTFSticky == 0 {
			err = errors.New("read back without the sticky flag")
		}
		return err
	}()
	p.Locked = func() error {
		// Only locked changes: learning and flooding stay as they are.
		l, err := readPort()
		if err != nil {
			return err
		}
		if err := k.SetPortFlags(port.Index, plan.Flags{Learning: l.Flags.Learning, Flood: l.Flags.Flood, Locked: true}, true); err != nil {
			return err
		}
		l, err = readPort()
		switch {
		case err != nil:
			return err
		case !l.LockCapable:
			return errors.New("the kernel does not report the locked flag")
		case !l.Flags.Locked:
			return errors.New("read back unlocked")
		}
		return nil
	}()
	p.VlanFiltering = func() error {
		if !br.VlanCapable {
			return errors.New("the bridge reports no default PVID")
		}
		if err := k.SetVlanFiltering(br.Index, true); err != nil {
			return err
		}
		links, err := k.Links()
		if err != nil {
			return err
		}
		if i := slices.IndexFunc(links, func(l *plan.Link) bool { return l.Index == br.Index }); i < 0 || !links[i].VlanFiltering {
			return errors.New("read back with vlan_filtering off")
		}
		return nil
	}()
	return p
}

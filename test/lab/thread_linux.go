package lab

import (
	"fmt"
	"runtime"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// InNS runs fn on a thread that has entered ns, and puts the thread back.
// Sockets and tap file descriptors opened by fn stay in ns. A thread that
// cannot go back is never reused: its goroutine exits still locked, and
// the runtime ends the thread.
func InNS(ns netns.NsHandle, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		err = fn()
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// NewNetNS creates a fresh, unnamed network namespace, on a thread of its
// own that goes back to its namespace (or ends) afterwards: the caller's
// thread never moves. The namespace lives as long as a handle to it.
func NewNetNS() (netns.NsHandle, error) {
	type made struct {
		ns  netns.NsHandle
		err error
	}
	ch := make(chan made, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			ch <- made{netns.None(), err}
			return
		}
		defer orig.Close()
		ns, err := netns.New() // enters it
		if err != nil {
			runtime.UnlockOSThread()
			ch <- made{netns.None(), fmt.Errorf("creating network namespace: %w", err)}
			return
		}
		if err := netns.Set(orig); err != nil {
			ns.Close()
			ch <- made{netns.None(), fmt.Errorf("returning to the original namespace: %w", err)}
			return // the thread stays locked and ends with the goroutine
		}
		runtime.UnlockOSThread()
		ch <- made{ns, nil}
	}()
	m := <-ch
	return m.ns, m.err
}

// InNamed is InNS for the named network namespace name (ip netns).
func InNamed(name string, fn func() error) error {
	ns, err := netns.GetFromName(name)
	if err != nil {
		return fmt.Errorf("network namespace %s: %w", name, err)
	}
	defer ns.Close()
	return InNS(ns, fn)
}

// OpenTap attaches to the existing persistent tap name in ns, as QEMU does
// with the tap libvirt made (TUNSETIFF IFF_TAP|IFF_NO_PI), and returns the
// file descriptor: the guest's end of the tap.
func OpenTap(ns netns.NsHandle, name string) (int, error) {
	fd := -1
	err := InNS(ns, func() error {
		f, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		ifr, err := unix.NewIfreq(name)
		if err != nil {
			unix.Close(f)
			return err
		}
		ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
		if err := unix.IoctlIfreq(f, unix.TUNSETIFF, ifr); err != nil {
			unix.Close(f)
			return fmt.Errorf("TUNSETIFF %s: %w", name, err)
		}
		fd = f
		return nil
	})
	return fd, err
}

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

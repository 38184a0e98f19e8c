//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fdbhook/fdbhook/test/lab"
)

const (
	uGuest = "fdbtw2"
	uMAC0  = "52:54:00:fd:0d:00"
	// bootDir is readable by libvirt's QEMU user (0711), which libvirt
	// gives the kernel and initramfs it boots.
	bootDir = "/var/lib/libvirt/boot"
)

// guestOS writes a busybox initramfs whose init says it is up on the
// serial port and then sleeps: enough of an OS for the guest's kernel to
// release a hot-unplugged device (ACPI eject). It returns the kernel,
// the initramfs and the serial log's paths.
func guestOS(t *testing.T) (kernel, initrd, serial string) {
	t.Helper()
	kernel = os.Getenv("FDBHOOK_E2E_GUEST_KERNEL")
	if kernel == "" {
		t.Fatal("FDBHOOK_E2E_GUEST_KERNEL is not set: run the suite with test/e2e/run.sh (it finds or downloads a kernel)")
	}
	stage := t.TempDir()
	for _, d := range []string{"bin", "proc", "sys", "dev"} {
		os.MkdirAll(filepath.Join(stage, d), 0o755)
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatalf("busybox-static: %v", err)
	}
	os.WriteFile(filepath.Join(stage, "bin/busybox"), bb, 0o755)
	init := "#!/bin/busybox sh\n/bin/busybox mount -t devtmpfs devtmpfs /dev\n" +
		"/bin/busybox echo FDBT-GUEST-UP >/dev/ttyS0\nwhile :; do /bin/busybox sleep 3600; done\n"
	os.WriteFile(filepath.Join(stage, "init"), []byte(init), 0o755)
	initrd = filepath.Join(bootDir, "fdbtw-initrd.cpio")
	kcopy := filepath.Join(bootDir, "fdbtw-vmlinuz")
	t.Cleanup(func() { os.Remove(initrd); os.Remove(kcopy) })
	cmd := exec.Command("sh", "-c", "find . | cpio -o -H newc --quiet >"+initrd)
	cmd.Dir = stage
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio: %v: %s", err, out)
	}
	kb, err := os.ReadFile(kernel)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(kcopy, kb, 0o644)
	serial = "/var/log/libvirt/qemu/" + uGuest + "-serial.log"
	os.Remove(serial)
	t.Cleanup(func() { os.Remove(serial) })
	return kcopy, initrd, serial
}

func unplugXML(kernel, initrd, serial string) string {
	body := strings.Replace(hotplugBody(fmt.Sprintf("<kernel>%s</kernel><initrd>%s</initrd>\n    <cmdline>console=ttyS0 panic=-1 quiet</cmdline>", kernel, initrd)),
		"<memory unit='MiB'>64</memory>", "<memory unit='MiB'>256</memory>", 1)
	return lab.Domain{Name: uGuest, Type: "qemu", Body: body,
		Devices: fmt.Sprintf("    <memballoon model='none'/>\n    <serial type='file'><source path='%s'/><target port='0'/></serial>\n", serial) + rootPorts(12),
		NICs:    []lab.NIC{{MAC: uMAC0, Bridge: bridge0, Model: "virtio", Extra: "      <rom enabled='no'/>\n"}}}.XML()
}

// staticOn lists the MACs with a static entry on bridge (iproute2).
func staticOn(t *testing.T, bridge string) []string {
	t.Helper()
	es, _, err := witnessFDB(bridge)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		if e.static {
			out = append(out, e.mac)
		}
	}
	slices.Sort(out)
	return out
}

// waitGone waits for libvirt to delete an unplugged NIC's tap.
func (k *kernel) waitGone(t *testing.T, tap string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for k.linkExists(t, tap) {
		if time.Now().After(deadline) {
			t.Fatalf("tap %s still exists 20 s after detach-interface (the guest did not release the NIC)", tap)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func Test11WatcherUnplug(t *testing.T) {
	timed(t)
	k := suite.k
	kernel, initrd, serial := guestOS(t)
	removeGuest(uGuest)
	t.Cleanup(func() { removeGuest(uGuest) })
	f := filepath.Join(t.TempDir(), uGuest+".xml")
	os.WriteFile(f, []byte(unplugXML(kernel, initrd, serial)), 0o644)
	virshOK(t, "define", f)
	virshOK(t, "start", uGuest)
	if !waitFor(90*time.Second, func() bool { b, _ := os.ReadFile(serial); return strings.Contains(string(b), "FDBT-GUEST-UP") }) {
		b, _ := os.ReadFile(serial)
		t.Fatalf("the guest's kernel did not reach init in 90 s; serial:\n%s", b)
	}
	tap0 := tapOf(t, uGuest, uMAC0)
	w := startWatcher(t, "watch-unplug.log")
	k.waitManaged(t, "start", tap0, bridge0, uMAC0)

	t.Run("detach-interface leaves nothing", func(t *testing.T) {
		mac := "52:54:00:fd:0d:ff"
		virshOK(t, "attach-interface", uGuest, "--type", "bridge", "--source", bridge0, "--mac", mac, "--model", "virtio", "--live")
		tap := tapOf(t, uGuest, mac)
		k.waitManaged(t, "attach", tap, bridge0, mac)
		virshOK(t, "detach-interface", uGuest, "bridge", "--mac", mac, "--live")
		k.waitGone(t, tap)
		time.Sleep(300 * time.Millisecond)
		k.assertNoStatic(t, mac, bridge0)
		k.assertManaged(t, tap0, bridge0, uMAC0)
	})

	t.Run("50 attach/detach cycles, then exactly the attached NICs' entries", func(t *testing.T) {
		var kept []string
		t0 := time.Now()
		for i := 0; i < 50; i++ {
			mac := fmt.Sprintf("52:54:00:fd:0d:%02x", i+1)
			virshOK(t, "attach-interface", uGuest, "--type", "bridge", "--source", bridge0, "--mac", mac, "--model", "virtio", "--live")
			if i%10 == 9 {
				kept = append(kept, mac) // left attached
				continue
			}
			tap := tapOf(t, uGuest, mac)
			virshOK(t, "detach-interface", uGuest, "bridge", "--mac", mac, "--live")
			k.waitGone(t, tap)
		}
		t.Logf("50 cycles in %v", time.Since(t0).Round(time.Millisecond))
		want := append([]string{uMAC0}, kept...)
		for _, mac := range want {
			k.waitManaged(t, "after the cycles", tapOf(t, uGuest, mac), bridge0, mac)
		}
		time.Sleep(500 * time.Millisecond)
		var live []string
		for _, n := range liveNICs(t, uGuest) {
			live = append(live, n.MAC.Address)
		}
		slices.Sort(live)
		slices.Sort(want)
		if !slices.Equal(live, want) {
			t.Errorf("live XML NICs %v, want %v", live, want)
		}
		var ours []string
		for _, m := range staticOn(t, bridge0) {
			if strings.HasPrefix(m, "52:54:00:fd:0d:") {
				ours = append(ours, m)
			}
		}
		if !slices.Equal(ours, want) {
			t.Errorf("static entries of the guest's MACs on %s: %v, want exactly %v", bridge0, ours, want)
		}
	})
	w.stop(t)
}

//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fdbhook/fdbhook/test/lab"
)

// The watcher scenario's names.
const (
	wGuest  = "fdbtw1"
	wBridge = "fdbtwbr2"          // a second managed bridge, added to the configuration by the scenario
	wMAC0   = "52:54:00:fd:0a:00" // bridge0, at start
	wMACBr  = "52:54:00:fd:0a:01" // hotplugged, type='bridge'
	wMACNet = "52:54:00:fd:0a:02" // hotplugged, type='network'
	wMACRe  = "52:54:00:fd:0a:03" // hotplugged after libvirtd restarted
)

// hotplugXML is a diskless q35 guest that accepts hotplug: ACPI and spare
// PCIe root ports (the i440fx default refuses: "Bus 'pci.0' does not
// support hotplugging").
func hotplugXML(name, mac string) string {
	return lab.Domain{Name: name, Type: "qemu", Body: hotplugBody(""),
		Devices: "    <memballoon model='none'/>\n" + rootPorts(8),
		NICs:    []lab.NIC{{MAC: mac, Bridge: bridge0, Model: "virtio", Extra: "      <rom enabled='no'/>\n"}}}.XML()
}

// hotplugBody is a q35 guest with ACPI, with os (kernel, initrd, command
// line) inside <os>.
func hotplugBody(os string) string {
	return "  <memory unit='MiB'>64</memory>\n  <vcpu>1</vcpu>\n  <os><type arch='x86_64' machine='q35'>hvm</type>" + os +
		"</os>\n  <features><acpi/></features>\n"
}

// rootPorts are the PCIe root complex and n spare root ports: slots for
// hotplugged NICs.
func rootPorts(n int) string {
	var b strings.Builder
	b.WriteString("    <controller type='pci' index='0' model='pcie-root'/>\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "    <controller type='pci' index='%d' model='pcie-root-port'/>\n", i)
	}
	return b.String()
}

// watcher is a running `fdbhook watch`.
type watcher struct {
	cmd *exec.Cmd
	log string
}

func startWatcher(t *testing.T, logName string) *watcher {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), logName)
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(adminBinary(t), "watch")
	cmd.Env = []string{"LC_ALL=C", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "FDBHOOK_CONFIG=" + configPath, "FDBHOOK_LOG_LEVEL=debug"}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w := &watcher{cmd: cmd, log: logPath}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s:\n%s", logName, w.output())
		}
		if w.cmd.ProcessState == nil {
			w.cmd.Process.Kill()
			w.cmd.Wait()
		}
	})
	if !waitFor(10*time.Second, func() bool { return strings.Contains(w.output(), "connected to libvirt") }) {
		t.Fatalf("the watcher did not connect to libvirt within 10 s:\n%s", w.output())
	}
	return w
}

func (w *watcher) output() string {
	b, _ := os.ReadFile(w.log)
	return string(b)
}

// stop sends SIGTERM and checks the watcher exits 0 within a second.
func (w *watcher) stop(t *testing.T) {
	t.Helper()
	w.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- w.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("watcher exit after SIGTERM: %v\n%s", err, w.output())
		}
	case <-time.After(time.Second):
		t.Errorf("watcher still running a second after SIGTERM")
		w.cmd.Process.Kill()
		<-done
	}
}

// managedNow reports whether port is off learning and flood on bridge and
// holds exactly one entry for mac, static (netlink).
func (k *kernel) managedNow(port, bridge, mac string) bool {
	ps, err := k.port(port)
	if err != nil || ps != (portState{master: bridge}) {
		return false
	}
	es, err := k.fdb()
	if err != nil {
		return false
	}
	n := 0
	for _, e := range es {
		if e.mac == mac && e.master != "" {
			if e.dev != port || !e.static {
				return false
			}
			n++
		}
	}
	return n == 1
}

// waitManaged waits up to 2 s for the watcher to manage port and returns
// how long it took; iproute2 then confirms.
func (k *kernel) waitManaged(t *testing.T, what, port, bridge, mac string) time.Duration {
	t.Helper()
	start := time.Now()
	for !k.managedNow(port, bridge, mac) {
		if time.Since(start) > 2*time.Second {
			t.Fatalf("%s: %s not managed 2 s later", what, port)
		}
		time.Sleep(5 * time.Millisecond)
	}
	d := time.Since(start)
	k.assertManaged(t, port, bridge, mac)
	t.Logf("%s: %s managed %v after the change", what, port, d.Round(time.Millisecond))
	return d
}

// writeConfig replaces the suite's configuration for the rest of the
// scenario (the hooks read it too) and puts the original back after.
func writeConfig(t *testing.T, text string) {
	t.Helper()
	orig, err := os.ReadFile(configPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.WriteFile(configPath, orig, 0o644) })
	if err := os.WriteFile(configPath+".fdbtw", []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(configPath+".fdbtw", configPath); err != nil {
		t.Fatal(err)
	}
}

// updateBridge moves a running guest's NIC to another bridge with
// update-device --live.
func updateBridge(t *testing.T, guest, mac, bridge string) {
	t.Helper()
	x := fmt.Sprintf("<interface type='bridge'><mac address='%s'/><source bridge='%s'/><model type='virtio'/></interface>", mac, bridge)
	p := filepath.Join(t.TempDir(), "nic.xml")
	if err := os.WriteFile(p, []byte(x), 0o644); err != nil {
		t.Fatal(err)
	}
	virshOK(t, "update-device", guest, p, "--live")
}

func Test10Watcher(t *testing.T) {
	timed(t)
	k := suite.k
	run(t, "ip", "link", "add", wBridge, "type", "bridge")
	t.Cleanup(func() { exec.Command("ip", "link", "del", wBridge).Run() })
	run(t, "ip", "link", "set", wBridge, "up")
	orig, err := os.ReadFile(configPath)
	if err != nil {
		t.Fatal(err)
	}

	removeGuest(wGuest)
	t.Cleanup(func() { removeGuest(wGuest) })
	f := filepath.Join(t.TempDir(), wGuest+".xml")
	os.WriteFile(f, []byte(hotplugXML(wGuest, wMAC0)), 0o644)
	virshOK(t, "define", f)
	virshOK(t, "start", wGuest)
	tap0 := tapOf(t, wGuest, wMAC0)
	k.assertManaged(t, tap0, bridge0, wMAC0)

	w := startWatcher(t, "watch-1.log")

	t.Run("attach type=bridge", func(t *testing.T) {
		virshOK(t, "attach-interface", wGuest, "--type", "bridge", "--source", bridge0, "--mac", wMACBr, "--model", "virtio", "--live")
		k.waitManaged(t, "attach-interface bridge", tapOf(t, wGuest, wMACBr), bridge0, wMACBr)
	})
	t.Run("attach type=network", func(t *testing.T) {
		virshOK(t, "attach-interface", wGuest, "--type", "network", "--source", brNet, "--mac", wMACNet, "--model", "virtio", "--live")
		k.waitManaged(t, "attach-interface network", tapOf(t, wGuest, wMACNet), bridge0, wMACNet)
	})
	t.Run("learning on and an entry deleted by hand", func(t *testing.T) {
		setPortFlags(t, tap0, true, true)
		k.waitManaged(t, "learning on", tap0, bridge0, wMAC0)
		run(t, "bridge", "fdb", "del", wMAC0, "dev", tap0, "master")
		k.waitManaged(t, "entry deleted", tap0, bridge0, wMAC0)
	})
	top := t
	t.Run("config change applies to running guests", func(t *testing.T) {
		// The NIC moves to a bridge the configuration does not list yet:
		// left alone. Then the file lists it: the watcher reloads and
		// manages the running guest's port there.
		tap := tapOf(t, wGuest, wMACBr)
		updateBridge(t, wGuest, wMACBr, wBridge)
		time.Sleep(300 * time.Millisecond)
		k.assertUntouched(t, tap, wBridge, wMACBr)
		k.assertNoStatic(t, wMACBr, bridge0)
		text := strings.Replace(string(orig), `bridges  = ["fdbtbr0"]`, `bridges  = ["fdbtbr0", "`+wBridge+`"]`, 1)
		if text == string(orig) {
			t.Fatalf("cannot add %s to the configuration:\n%s", wBridge, orig)
		}
		writeConfig(top, text)
		k.waitManaged(t, "configuration changed", tap, wBridge, wMACBr)
		if !strings.Contains(w.output(), "configuration reloaded") {
			t.Errorf("no reload in the log:\n%s", w.output())
		}
	})
	t.Run("update-device between managed bridges and to an unmanaged one", func(t *testing.T) {
		tap := tapOf(t, wGuest, wMACBr)
		updateBridge(t, wGuest, wMACBr, bridge0)
		k.waitManaged(t, "update-device "+wBridge+" to "+bridge0, tap, bridge0, wMACBr)
		if got := staticOn(t, wBridge); slices.Contains(got, wMACBr) {
			t.Errorf("%s left on %s after the move: %v", wMACBr, wBridge, got)
		}
		updateBridge(t, wGuest, wMACBr, wBridge)
		k.waitManaged(t, "update-device "+bridge0+" to "+wBridge, tap, wBridge, wMACBr)
		if got := staticOn(t, bridge0); slices.Contains(got, wMACBr) {
			t.Errorf("%s left on %s after the move: %v", wMACBr, bridge0, got)
		}
		updateBridge(t, wGuest, wMACBr, bridge1)
		time.Sleep(500 * time.Millisecond)
		k.assertUntouched(t, tap, bridge1, wMACBr)
		k.assertNoStatic(t, wMACBr, bridge0, wBridge)
	})
	t.Run("libvirtd restarted while the watcher runs", func(t *testing.T) {
		before := strings.Count(w.output(), "connected to libvirt")
		restartLibvirtd(t)
		if !waitFor(15*time.Second, func() bool { return strings.Count(w.output(), "connected to libvirt") > before }) {
			t.Fatalf("the watcher did not reconnect after libvirtd restarted:\n%s", w.output())
		}
		virshOK(t, "attach-interface", wGuest, "--type", "bridge", "--source", bridge0, "--mac", wMACRe, "--model", "virtio", "--live")
		k.waitManaged(t, "attach after the libvirtd restart", tapOf(t, wGuest, wMACRe), bridge0, wMACRe)
	})
	t.Run("watcher restarted while guests run", func(t *testing.T) {
		w.stop(t)
		if out := admin(t, "status"); !strings.Contains(out.stdout, "watcher: not running") {
			t.Errorf("status with the watcher stopped does not say so:\n%s", out.stdout)
		}
		tap := tapOf(t, wGuest, wMACRe)
		setPortFlags(t, tap, true, true)
		time.Sleep(300 * time.Millisecond)
		k.assertPort(t, tap, portState{master: bridge0, learning: true, flood: true})
		w = startWatcher(top, "watch-2.log")
		k.waitManaged(t, "watcher start-up", tap, bridge0, wMACRe)
		if out := admin(t, "status"); !strings.Contains(out.stdout, "watcher: running (pid") {
			t.Errorf("status with the watcher running does not say so:\n%s", out.stdout)
		}
	})
	t.Run("SIGTERM during a burst leaves no half-applied guest", func(t *testing.T) {
		var macs []string
		for i := 0; i < 3; i++ {
			mac := fmt.Sprintf("52:54:00:fd:0b:%02x", i)
			macs = append(macs, mac)
			virshOK(t, "attach-interface", wGuest, "--type", "bridge", "--source", bridge0, "--mac", mac, "--model", "virtio", "--live")
			if i == 1 {
				setPortFlags(t, tap0, true, true)
				w.stop(t)
			}
		}
		// Each NIC is either fully managed or untouched; all NICs of the
		// guest are one unit: if any is managed, all that existed are.
		for _, mac := range macs {
			tap := tapOf(t, wGuest, mac)
			if !k.managedNow(tap, bridge0, mac) {
				k.assertUntouched(t, tap, bridge0, mac)
			}
		}
		w = startWatcher(top, "watch-3.log")
		for _, mac := range append(slices.Clone(macs), wMAC0) {
			k.waitManaged(t, "after the restart", tapOf(t, wGuest, mac), bridge0, mac)
		}
	})
	w.stop(t)
}

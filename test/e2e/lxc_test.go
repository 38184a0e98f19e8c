//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/fdbhook/fdbhook/test/lab"
)

// Containers of libvirt's LXC driver (lxc:///system): application
// containers running a shell from the host's filesystem, each NIC a veth
// pair whose host end is the NIC's <target dev>.
const (
	ct1     = "fdbtlxc1"
	ct1A    = "52:54:00:fd:0c:01" // bridge fdbtbr0, <target dev='fdbtlxc1a'/>
	ct1B    = "52:54:00:fd:0c:02" // bridge fdbtbr0, veth named by libvirt
	ct1C    = "52:54:00:fd:0c:03" // bridge fdbtbr0, hotplugged as fdbtlxc1c
	ct1Veth = "fdbtlxc1a"
	ct2     = "fdbtlxc2"
	ct2A    = "52:54:00:fd:0c:11" // bridge fdbtbr1, not managed
	ct2Veth = "fdbtlxc2a"
)

// lxcVirsh is virsh against the system daemon's LXC driver.
func lxcVirsh(args ...string) (string, string, error) { return virshAt(lxcURI, args...) }

func lxcVirshOK(t *testing.T, args ...string) string {
	t.Helper()
	return virshOKAt(t, lxcURI, args...)
}

// containerXML is a transient application container: /bin/sh brings its
// NICs up (so the bridge forwards to their host veths) and sleeps.
func containerXML(name string, nics []nic) string {
	ip, err := exec.LookPath("ip")
	if err != nil {
		ip = "/sbin/ip"
	}
	d := lab.Domain{Name: name, Type: "lxc",
		Body: fmt.Sprintf("  <memory unit='MiB'>64</memory>\n  <os>\n    <type>exe</type>\n    <init>/bin/sh</init>\n"+
			"    <initarg>-c</initarg>\n    <initarg>for i in /sys/class/net/eth*; do %s link set dev \"${i##*/}\" up; done; exec sleep 3600</initarg>\n  </os>\n", ip),
		Devices: "    <console type='pty'/>\n"}
	for _, n := range nics {
		d.NICs = append(d.NICs, n.lab())
	}
	return d.XML()
}

// startContainer creates a transient container and destroys it when the
// test ends.
func startContainer(t *testing.T, name string, nics []nic) {
	t.Helper()
	lxcVirsh("destroy", name)
	t.Cleanup(func() { lxcVirsh("destroy", name) })
	f, err := os.CreateTemp(t.TempDir(), name+"-*.xml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(containerXML(name, nics)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	lxcVirshOK(t, "create", f.Name())
}

// containerVeth returns the host veth libvirt gave the container's NIC mac.
func containerVeth(t *testing.T, name, mac string) (string, string) {
	t.Helper()
	live := lxcVirshOK(t, "dumpxml", name)
	var d liveDomain
	if err := xml.Unmarshal([]byte(live), &d); err != nil {
		t.Fatalf("dumpxml %s: %v", name, err)
	}
	for _, n := range d.Interfaces {
		if strings.EqualFold(n.MAC.Address, mac) && n.Target.Dev != "" {
			return n.Target.Dev, live
		}
	}
	t.Fatalf("container %s has no NIC %s with a target in its live XML:\n%s", name, mac, live)
	return "", ""
}

// TestLxcContainers: a container with two NICs on the managed bridge gets
// learning and flood off on both host veths and a static entry for each
// MAC; unknown unicast from the outside host no longer reaches its veths;
// status, explain, reconcile and the watcher cover it, and the watcher
// manages a NIC hotplugged into it; a libvirtd restart
// re-applies what was undone by hand (reconnect); a
// container on the unmanaged bridge is untouched; the lxc hook refuses a
// domain XML naming the uplink veth; and stop leaves nothing behind.
func TestLxcContainers(t *testing.T) {
	timed(t)
	k := suite.k
	startContainer(t, ct1, []nic{
		{typ: "bridge", mac: ct1A, source: bridge0, target: ct1Veth},
		{typ: "bridge", mac: ct1B, source: bridge0},
	})
	startContainer(t, ct2, []nic{{typ: "bridge", mac: ct2A, source: bridge1, target: ct2Veth}})
	vethB, live := containerVeth(t, ct1, ct1B)
	k.assertManaged(t, ct1Veth, bridge0, ct1A)
	k.assertManaged(t, vethB, bridge0, ct1B)
	k.assertUntouched(t, ct2Veth, bridge1, ct2A)

	t.Run("traffic", func(t *testing.T) {
		const n = 200
		veths := []string{ct1Veth, vethB}
		// The bridge forwards to a veth only while its peer is up: the
		// container's shell brings its NICs up.
		if !waitFor(10*time.Second, func() bool {
			for _, v := range veths {
				if b, _ := os.ReadFile("/sys/class/net/" + v + "/carrier"); strings.TrimSpace(string(b)) != "1" {
					return false
				}
			}
			return true
		}) {
			t.Fatalf("the container's veths %v have no carrier 10 s after start: its shell did not bring its NICs up", veths)
		}
		k.quietTaps(t, veths...)
		got := k.deliver(t, mustMAC("02:fd:b7:00:0c:01"), n, veths, nil)
		assertReached(t, "container managed, unknown unicast", n, got)
		got = k.deliver(t, mustMAC(ct1A), n, veths, []string{ct1Veth})
		assertReached(t, "container managed, to "+ct1A, n, got, ct1Veth)
		// The control: with flood turned on again by hand, the same
		// unknown unicast reaches that veth, so the counts above are real.
		setPortFlags(t, vethB, false, true)
		got = k.deliver(t, mustMAC("02:fd:b7:00:0c:01"), n, veths, []string{vethB})
		assertReached(t, "flood on by hand on "+vethB+", unknown unicast", n, got, vethB)
		setPortFlags(t, vethB, false, false)
	})

	t.Run("uplink named as target is refused", func(t *testing.T) {
		hook := os.Getenv("FDBHOOK_E2E_LXC_HOOK")
		if hook == "" {
			hook = "/etc/libvirt/hooks/lxc.d/fdbhook"
		}
		forged := strings.Replace(live, "<target dev='"+vethB+"'/>", "<target dev='"+uplink+"'/>", 1)
		if forged == live {
			t.Fatalf("no <target dev='%s'/> in the live XML:\n%s", vethB, live)
		}
		cmd := exec.Command(hook, ct1, "started", "begin", "-")
		cmd.Env = []string{"LC_ALL=C", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
		cmd.Stdin = strings.NewReader(forged)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		want := "veth " + uplink + " has its peer in network namespace id "
		if code := cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(stderr.String(), want) ||
			strings.Count(strings.TrimSpace(stderr.String()), "\n") != 0 || stdout.Len() != 0 {
			t.Errorf("%s %s started begin with %s as a target: %v, exit %d, stdout %q, stderr %q; want exit 1 and one line with %q",
				hook, ct1, uplink, err, code, stdout.String(), stderr.String(), want)
		}
		k.assertPort(t, uplink, portState{master: bridge0, learning: true, flood: true})
		k.assertManaged(t, ct1Veth, bridge0, ct1A) // nothing of the refused run left applied, nothing undone
	})

	t.Run("status, explain and reconcile", func(t *testing.T) {
		r := admin(t, "status", "--json")
		var rep statusReport
		if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
			t.Fatalf("status --json (exit %d) does not parse: %v\n%s%s", r.code, err, r.stdout, r.stderr)
		}
		// Status lists managed bridges only: ct2's bridge is not one.
		want := map[string]string{ct1Veth: ct1 + " " + ct1A + " managed", vethB: ct1 + " " + ct1B + " managed"}
		for _, b := range rep.Bridges {
			for _, port := range b.Ports {
				w, ok := want[port.Name]
				if !ok {
					continue
				}
				delete(want, port.Name)
				got := fmt.Sprintf("%s %s %s", port.Guest, port.MAC, map[bool]string{true: "managed", false: "not managed"}[port.Managed])
				if port.Kind != "guest" || port.Device != "veth" || got != w || port.Learning || port.Flood {
					t.Errorf("status --json: port %s is %+v, want a guest veth: %s", port.Name, port, w)
				}
			}
		}
		if len(want) != 0 {
			t.Errorf("status --json lists no port %v", want)
		}

		file := t.TempDir() + "/" + ct1 + ".xml"
		if err := os.WriteFile(file, []byte(live), 0o644); err != nil {
			t.Fatal(err)
		}
		r = admin(t, "explain", file)
		line := fmt.Sprintf("fdb replace %s dev %s master %s static", ct1A, ct1Veth, bridge0)
		if r.code != 0 || !strings.Contains(r.stdout, line) {
			t.Errorf("explain %s: exit %d, want 0 and a line with %q:\n%s%s", file, r.code, line, r.stdout, r.stderr)
		}

		setPortFlags(t, ct1Veth, true, true)
		run(t, "bridge", "fdb", "del", ct1A, "dev", ct1Veth, "master")
		k.assertUntouched(t, ct1Veth, bridge0, ct1A)
		r = admin(t, "reconcile")
		if !strings.Contains(r.stdout, ct1Veth) {
			t.Errorf("reconcile (exit %d) does not name %s:\n%s%s", r.code, ct1Veth, r.stdout, r.stderr)
		}
		k.assertManaged(t, ct1Veth, bridge0, ct1A)
		k.assertUntouched(t, ct2Veth, bridge1, ct2A)
	})

	t.Run("the watcher heals a container's veth", func(t *testing.T) {
		w := startWatcher(t, "lxc-watch.log")
		setPortFlags(t, vethB, true, true)
		run(t, "bridge", "fdb", "del", ct1B, "dev", vethB, "master")
		k.waitManaged(t, "learning on and the entry deleted by hand", vethB, bridge0, ct1B)
		k.assertUntouched(t, ct2Veth, bridge1, ct2A)
		w.stop(t)
	})

	t.Run("the watcher manages a NIC hotplugged into the container", func(t *testing.T) {
		// No hook runs at a hotplug, and the LXC driver sends the watcher
		// no device event: the new veth on the bridge and the container's
		// rewritten live XML are what it sees.
		const mac, veth = ct1C, "fdbtlxc1c"
		w := startWatcher(t, "lxc-hotplug.log")
		lxcVirshOK(t, "attach-interface", ct1, "bridge", bridge0, "--mac", mac, "--target", veth)
		k.waitManaged(t, "attach-interface", veth, bridge0, mac)
		k.assertManaged(t, ct1Veth, bridge0, ct1A)
		k.assertUntouched(t, ct2Veth, bridge1, ct2A)
		lxcVirshOK(t, "detach-interface", ct1, "bridge", "--mac", mac)
		k.waitGone(t, veth)
		k.assertNoStatic(t, mac, bridge0, bridge1)
		w.stop(t)
	})

	t.Run("reconnect re-applies", func(t *testing.T) {
		for _, p := range []struct{ veth, mac string }{{ct1Veth, ct1A}, {vethB, ct1B}} {
			setPortFlags(t, p.veth, true, true)
			run(t, "bridge", "fdb", "del", p.mac, "dev", p.veth, "master")
			k.assertUntouched(t, p.veth, bridge0, p.mac)
		}
		restartLibvirtd(t)
		ok := waitFor(60*time.Second, func() bool {
			for _, v := range []string{ct1Veth, vethB} {
				if st, err := k.port(v); err != nil || st.learning || st.flood {
					return false
				}
			}
			return true
		})
		if !ok {
			t.Fatal("60 s after the libvirtd restart the container's veths still learn or flood: no reconnect apply")
		}
		k.assertManaged(t, ct1Veth, bridge0, ct1A)
		k.assertManaged(t, vethB, bridge0, ct1B)
		k.assertUntouched(t, ct2Veth, bridge1, ct2A)
	})

	t.Run("stop leaves nothing", func(t *testing.T) {
		lxcVirshOK(t, "destroy", ct1)
		lxcVirshOK(t, "destroy", ct2)
		for _, v := range []string{ct1Veth, vethB, ct2Veth} {
			k.waitGone(t, v)
			k.assertGone(t, v)
		}
		for _, mac := range []string{ct1A, ct1B, ct2A} {
			k.assertNoStatic(t, mac, bridge0, bridge1)
		}
	})
}

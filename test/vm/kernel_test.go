//go:build vm

package vm

import (
	"os"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
)

// TestKernel checks what every other test relies on: the kernel can turn
// vlan_filtering on (the development kernel cannot), the real iproute2
// binaries run, and the hook binaries are in place. A failure here is a
// problem of the VM image, not of fdbhook.
func TestKernel(t *testing.T) {
	for _, p := range []string{ipPath, bridgePath, qemuHookPath, networkHookPath} {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode()&0o111 == 0 {
			t.Fatalf("%s is not an executable in the VM: %v", p, err)
		}
	}
	if v := mustRun(t, ipPath, "-V"); !strings.Contains(v, "iproute2") {
		t.Fatalf("%s -V does not look like iproute2: %q", ipPath, v)
	}
	n := newNS(t, "kernel")
	n.ip("link add br0 type bridge vlan_filtering 0")
	if n.vlanFiltering("br0") {
		t.Fatal("br0 created with vlan_filtering 0 reports vlan_filtering 1")
	}
	// A Bridge read back by LinkByName carries every attribute it was
	// dumped with, and re-sending them all makes this kernel answer EINVAL
	// (after applying vlan_filtering). Send only the bridge's identity.
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br0", Index: n.link("br0").Attrs().Index, TxQLen: -1}}
	if err := n.h.BridgeSetVlanFiltering(br, true); err != nil {
		t.Fatalf("netlink: set vlan_filtering on br0: %v (kernel without CONFIG_BRIDGE_VLAN_FILTERING?)", err)
	}
	if !n.vlanFiltering("br0") {
		t.Fatal("vlan_filtering still 0 after setting it")
	}
	n.addTap("fdbttap0", "br0")
	if out := n.bridge("vlan show dev fdbttap0"); !strings.Contains(out, "PVID") {
		t.Fatalf("a port of a vlan_filtering bridge has no PVID:\n%s", out)
	}
}

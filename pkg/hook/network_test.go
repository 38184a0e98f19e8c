package hook

import (
	"bytes"
	"strings"
	"testing"

	"github.com/fdbhook/fdbhook/pkg/host"
	"github.com/fdbhook/fdbhook/pkg/kernel/kerneltest"
	"github.com/fdbhook/fdbhook/test/lab"
)

func runNetwork(t *testing.T, cfg string, stdin []byte, k *kerneltest.Kernel, args ...string) run {
	t.Helper()
	return runHook(t, (*Runner).RunNetwork, "network-hook", cfg, stdin, nil, k, args...)
}

func netFixture(t *testing.T, name string) []byte { return lab.Recorded(t, "libvirt-9.0", name) }

const cfgPolicy = "networks = [\"hostbr\"]\n[bridge.br0]\nvlan_filtering = \"enable\"\n"

func TestNetworkPolicy(t *testing.T) {
	start := netFixture(t, "network-hostbr-start-begin.xml")
	capable := func() *kerneltest.Kernel {
		k := kerneltest.T2Host()
		k.Device("br0").VlanCapable = true
		return k
	}
	for _, tc := range []struct {
		name, cfg, op, subop string
		stdin                []byte
		kernel               *kerneltest.Kernel
		writes, stderr       string
	}{
		{"start enables", cfgPolicy, "start", "begin", start, capable(), "vlan", ""},
		{"started enables", cfgPolicy, "started", "begin", netFixture(t, "network-hostbr-started-begin.xml"), capable(), "vlan", ""},
		{"already on", cfgPolicy, "start", "begin", start, func() *kerneltest.Kernel { k := capable(); k.Device("br0").VlanFiltering = true; return k }(), "", ""},
		{"incapable kernel warns", cfgPolicy, "start", "begin", start, kerneltest.T2Host(), "",
			"fdbhook: warning: bridge br0: vlan_filtering = \"enable\" cannot take effect: this kernel has no bridge VLAN filtering network=hostbr\n"},
		{"policy leave", "networks = [\"hostbr\"]\n", "start", "begin", start, capable(), "", ""},
		{"listed by bridge", "bridges = [\"br0\"]\n[bridge.br0]\nvlan_filtering = \"enable\"\n", "start", "begin", start, capable(), "vlan", ""},
		{"not managed", "networks = [\"other\"]\n[bridge.br0]\nvlan_filtering = \"enable\"\n", "start", "begin", start, capable(), "", ""},
		{"mac table libvirt", cfgPolicy, "start", "begin",
			bytes.Replace(start, []byte("<bridge name='br0'/>"), []byte("<bridge name='br0' macTableManager='libvirt'/>"), 1), capable(), "", ""},
		{"bridge not there yet", cfgPolicy, "start", "begin", start, func() *kerneltest.Kernel { k := capable(); k.Delete("br0"); return k }(), "", ""},
		{"port-created", cfgPolicy, "port-created", "begin", netFixture(t, "network-hostbr-port-created-begin.xml"), capable(), "", ""},
		{"port-deleted", cfgPolicy, "port-deleted", "begin", netFixture(t, "network-hostbr-port-deleted-begin.xml"), capable(), "", ""},
		{"stopped", cfgPolicy, "stopped", "end", netFixture(t, "network-hostbr-stopped-end.xml"), capable(), "", ""},
		{"updated", cfgPolicy, "updated", "begin", start, capable(), "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runNetwork(t, tc.cfg, tc.stdin, tc.kernel, "hostbr", tc.op, tc.subop, "-")
			if r.code != host.ExitOK || r.stdout != "" {
				t.Errorf("exit %d stdout %q", r.code, r.stdout)
			}
			if got := strings.Join(r.kernel.WriteLog(), " "); got != tc.writes {
				t.Errorf("writes %q, want %q", got, tc.writes)
			}
			if r.stderr != tc.stderr {
				t.Errorf("stderr %q, want %q", r.stderr, tc.stderr)
			}
		})
	}
}

func TestNetworkFailures(t *testing.T) {
	start := netFixture(t, "network-hostbr-start-begin.xml")
	notBridge := kerneltest.T2Host()
	notBridge.Device("br0").Type = "device"
	for _, tc := range []struct {
		name, cfg string
		stdin     []byte
		kernel    *kerneltest.Kernel
		args      []string
		code      int
		stderr    string
	}{
		{"bad config fails start", "networks = 1", start, kerneltest.T2Host(), []string{"hostbr", "start", "begin", "-"}, host.ExitConfig, "fdbhook: network hostbr: "},
		{"bad config ignored at stop", "networks = 1", start, kerneltest.T2Host(), []string{"hostbr", "stopped", "end", "-"}, host.ExitOK, ""},
		{"bad xml", cfgPolicy, []byte("<hookData><network>"), kerneltest.T2Host(), []string{"hostbr", "start", "begin", "-"}, host.ExitInput, "fdbhook: network hostbr: bad network XML: "},
		{"bridge is a device", cfgPolicy, start, notBridge, []string{"hostbr", "start", "begin", "-"}, host.ExitOK, "br0 is a physical device, not a bridge"},
		{"usage", cfgPolicy, nil, kerneltest.T2Host(), []string{"hostbr"}, host.ExitUsage, "not a hook call: expected NETWORK OPERATION SUB-OPERATION EXTRA, got 1 arguments"},
		{"help", "", nil, kerneltest.T2Host(), []string{"--help"}, host.ExitOK, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runNetwork(t, tc.cfg, tc.stdin, tc.kernel, tc.args...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.stderr) || tc.stderr == "" && r.stderr != "" {
				t.Errorf("exit %d stderr %q; want %d and %q", r.code, r.stderr, tc.code, tc.stderr)
			}
			if len(r.kernel.WriteLog()) != 0 {
				t.Errorf("kernel written: %v", r.kernel.WriteLog())
			}
			if tc.args[0] == "--help" {
				if !strings.Contains(r.stdout, "network-hook NETWORK OPERATION SUB-OPERATION EXTRA") {
					t.Errorf("--help stdout %q lacks the usage line", r.stdout)
				}
			} else if r.stdout != "" {
				t.Errorf("stdout %q", r.stdout)
			}
		})
	}
}

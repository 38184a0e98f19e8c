package guest

import (
	"errors"
	"strings"
	"testing"

	"github.com/fdbhook/fdbhook/test/lab"
)

func fixture(t testing.TB, name string) []byte { return lab.Recorded(t, "libvirt-9.0", name) }

func TestParseStartFixture(t *testing.T) {
	g, err := Parse(fixture(t, "qemu-t2-start-begin.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if g.Name != "t2" || g.UUID != "83e2cf5b-632a-49ec-9cd6-db81dcd95f64" || !g.Manage {
		t.Errorf("guest = %+v", g)
	}
	want := []NIC{
		{Index: 0, Alias: "net0", Type: "bridge", MAC: "52:54:00:aa:cc:01", Bridge: "br0", Target: "guest-t2-a"},
		{Index: 1, Alias: "net1", Type: "network", MAC: "52:54:00:aa:cc:02", Bridge: "virbr0", Network: "default", Target: "vnet6"},
		{Index: 2, Alias: "net2", Type: "bridge", MAC: "52:54:00:aa:cc:03", Bridge: "br0", Network: "hostbr", Target: "vnet7"},
		{Index: 3, Alias: "net3", Type: "user", MAC: "52:54:00:aa:cc:05"},
		{Index: 4, Alias: "net4", Type: "ethernet", MAC: "52:54:00:aa:cc:06", Target: "tapeth6"},
	}
	if len(g.NICs) != len(want) {
		t.Fatalf("%d NICs, want %d", len(g.NICs), len(want))
	}
	for i := range want {
		if g.NICs[i] != want[i] {
			t.Errorf("NIC %d = %+v, want %+v", i, g.NICs[i], want[i])
		}
	}
	// Another tool's metadata (urn:example:fdb) is not ours.
	if len(g.Interfaces) != 0 {
		t.Errorf("foreign metadata parsed as ours: %v", g.Interfaces)
	}
}

func TestParseStoppedFixture(t *testing.T) {
	g, err := Parse(fixture(t, "qemu-t2-stopped-end.xml"))
	if err != nil {
		t.Fatal(err)
	}
	// At stop libvirt drops generated target names but keeps custom ones,
	// and a network NIC has lost its bridge.
	if g.NICs[0].Target != "guest-t2-a" || g.NICs[2].Target != "" || g.NICs[2].Bridge != "" || g.NICs[2].Network != "hostbr" {
		t.Errorf("NICs = %+v", g.NICs)
	}
}

func TestMetadata(t *testing.T) {
	base := string(fixture(t, "qemu-t2-start-begin.xml"))
	with := func(md string) []byte { return []byte(strings.Replace(base, "<metadata>", "<metadata>"+md, 1)) }

	g, err := Parse(with(`<fdbhook:fdb xmlns:fdbhook="urn:fdbhook:1" manage="no"/>`))
	if err != nil || g.Manage || g.Manages(g.NICs[0]) {
		t.Errorf("guest opt-out: %v, %+v", err, g)
	}
	g, err = Parse(with(`<f:fdb xmlns:f="urn:fdbhook:1"><f:interface mac="52:54:00:AA:CC:03" manage="no"/><f:interface mac="52:54:00:aa:cc:01" manage="yes"/></f:fdb>`))
	if err != nil {
		t.Fatal(err)
	}
	if !g.Manages(g.NICs[0]) || g.Manages(g.NICs[2]) {
		t.Errorf("NIC opt-out (any prefix, any case of MAC): %+v", g.Interfaces)
	}
	// What virsh metadata writes: a default namespace on the element.
	g, err = Parse(with(`<fdb xmlns="urn:fdbhook:1"><interface mac="52:54:00:aa:cc:01" manage="no"/></fdb>`))
	if err != nil || g.Manages(g.NICs[0]) {
		t.Errorf("default-namespace metadata: %v, %+v", err, g.Interfaces)
	}
	for name, md := range map[string]string{
		"bad manage":          `<f:fdb xmlns:f="urn:fdbhook:1" manage="maybe"/>`,
		"bad interface mac":   `<f:fdb xmlns:f="urn:fdbhook:1"><f:interface mac="zz" manage="no"/></f:fdb>`,
		"bad interface value": `<f:fdb xmlns:f="urn:fdbhook:1"><f:interface mac="52:54:00:aa:cc:01" manage="off"/></f:fdb>`,
		"unknown element":     `<f:fdb xmlns:f="urn:fdbhook:1"><f:port/></f:fdb>`,
		"unknown top element": `<f:other xmlns:f="urn:fdbhook:1"/>`,
		"interface twice":     `<f:fdb xmlns:f="urn:fdbhook:1"><f:interface mac="52:54:00:aa:cc:01"/><f:interface mac="52:54:00:AA:CC:01"/></f:fdb>`,
	} {
		if _, err := Parse(with(md)); !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), "t2: metadata urn:fdbhook:1") {
			t.Errorf("%s: Parse = %v, want ErrInput naming the guest and namespace", name, err)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"empty", "", "standard input is empty"},
		{"blank", "  \n", "standard input is empty"},
		{"not xml", "hello", "no root element"},
		{"truncated", "<domain><name>t2</name><devices>", "unexpected EOF"},
		{"wrong root", "<network><name>n</name></network>", "root element is <network>"},
		{"domstatus without domain", "<domstatus state='running'/>", "<domstatus> has no <domain>"},
		{"no name", "<domain><devices/></domain>", "has no <name>"},
		{"deep", strings.Repeat("<a>", 100) + strings.Repeat("</a>", 100), "nested deeper than 64"},
		{"mismatched", "<domain><name>x</name></devices></domain>", "element <domain> closed by </devices>"},
	} {
		_, err := Parse([]byte(tc.in))
		if !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Parse = %v, want ErrInput containing %q", tc.name, err, tc.want)
		}
	}
}

func TestReadInputLimit(t *testing.T) {
	big := strings.NewReader(strings.Repeat(" ", MaxInput+1))
	if _, err := ReadInput(big); !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), "larger than 16 MiB") {
		t.Errorf("ReadInput(16 MiB + 1) = %v", err)
	}
	if data, err := ReadInput(strings.NewReader(strings.Repeat(" ", MaxInput))); err != nil || len(data) != MaxInput {
		t.Errorf("ReadInput(16 MiB) = %d bytes, %v", len(data), err)
	}
}

func TestNormalizeMAC(t *testing.T) {
	for in, want := range map[string]string{
		"52:54:00:AA:cc:01": "52:54:00:aa:cc:01",
		"52-54-00-aa-cc-01": "52:54:00:aa:cc:01",
		"5254.00aa.cc01":    "52:54:00:aa:cc:01",
		"fe:00:00:00:00:01": "fe:00:00:00:00:01",
	} {
		if got, err := NormalizeMAC(in); err != nil || got != want {
			t.Errorf("NormalizeMAC(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for in, want := range map[string]string{
		"":                        "not a 48-bit",
		"52:54:00:aa:cc":          "not a 48-bit",
		"52:54:00:aa:cc:01:02:03": "not a 48-bit",
		"01:00:5e:00:00:01":       "multicast",
		"ff:ff:ff:ff:ff:ff":       "multicast",
		"00:00:00:00:00:00":       "all-zero",
		"52:54:00:aa:cc:zz":       "not a 48-bit",
	} {
		if _, err := NormalizeMAC(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("NormalizeMAC(%q) = %v, want error containing %q", in, err, want)
		}
	}
}

// TestNICMACNormalisedOnce: parsing puts every NIC's MAC in lower-case
// colon form, so that metadata, plans and reports compare one spelling;
// an unusable address keeps its text and says why in BadMAC.
func TestNICMACNormalisedOnce(t *testing.T) {
	xml := `<domain><name>m</name><devices>` +
		`<interface type='bridge'><mac address='52-54-00-AA-CC-09'/><source bridge='br0'/></interface>` +
		`<interface type='bridge'><mac address='01:00:5e:00:00:01'/><source bridge='br0'/></interface>` +
		`<interface type='bridge'><source bridge='br0'/></interface>` +
		`</devices><metadata><f:fdb xmlns:f="urn:fdbhook:1"><f:interface mac="52:54:00:aa:cc:09" manage="no"/></f:fdb></metadata></domain>`
	g, err := Parse([]byte(xml))
	if err != nil {
		t.Fatal(err)
	}
	if n := g.NICs[0]; n.MAC != "52:54:00:aa:cc:09" || n.BadMAC != nil || g.Manages(n) {
		t.Errorf("NIC 0: MAC %q, BadMAC %v, managed %v; want 52:54:00:aa:cc:09, nil, opted out by its metadata", n.MAC, n.BadMAC, g.Manages(n))
	}
	if n := g.NICs[1]; n.MAC != "01:00:5e:00:00:01" || n.BadMAC == nil || !strings.Contains(n.BadMAC.Error(), "multicast") {
		t.Errorf("NIC 1: MAC %q, BadMAC %v; want the text kept and a multicast error", n.MAC, n.BadMAC)
	}
	if n := g.NICs[2]; n.MAC != "" || n.BadMAC == nil {
		t.Errorf("NIC 2 (no <mac>): MAC %q, BadMAC %v; want no address and an error", n.MAC, n.BadMAC)
	}
}

// TestLiveState: libvirt's live XML says the guest's state, why, and its
// process; a plain <domain> says none of it.
func TestLiveState(t *testing.T) {
	for _, tc := range []struct {
		xml           string
		state, reason string
		pid           int
	}{
		{`<domstatus state='running' reason='unpaused' pid='4242'><domain><name>g</name></domain></domstatus>`, "running", "unpaused", 4242},
		{`<domstatus state='paused' reason='migration'><domain><name>g</name></domain></domstatus>`, "paused", "migration", 0},
		{`<domstatus state='running' pid='x'><domain><name>g</name></domain></domstatus>`, "running", "", 0},
		{`<domain><name>g</name></domain>`, "", "", 0},
	} {
		g, err := Parse([]byte(tc.xml))
		if err != nil {
			t.Fatalf("%s: %v", tc.xml, err)
		}
		if g.State != tc.state || g.Reason != tc.reason || g.Pid != tc.pid {
			t.Errorf("%s: state %q reason %q pid %d; want %q %q %d", tc.xml, g.State, g.Reason, g.Pid, tc.state, tc.reason, tc.pid)
		}
	}
}

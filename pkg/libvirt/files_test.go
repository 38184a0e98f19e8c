package libvirt

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fdbhook/fdbhook/test/lab"
)

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestNetwork(t *testing.T) {
	dir := t.TempDir()
	run, etc := filepath.Join(dir, "run"), filepath.Join(dir, "etc")
	// The running network's status wins over the persistent definition.
	write(t, filepath.Join(run, "lan.xml"), `<networkstatus><class_id bitmap='0-2'/><network><name>lan</name><forward mode='nat'/><bridge name='virbr1' macTableManager='libvirt'/></network></networkstatus>`)
	write(t, filepath.Join(etc, "lan.xml"), `<network><name>lan</name><bridge name='stale0'/></network>`)
	write(t, filepath.Join(etc, "hostbr.xml"), `<network><name>hostbr</name><forward mode='bridge'/><bridge name='br0'/></network>`)
	write(t, filepath.Join(etc, "broken.xml"), `<network><name>broken`)
	f := New(Paths{NetworkDirs: []string{run, etc}})

	n, err := f.Network("lan")
	if err != nil || n == nil || n.Bridge != "virbr1" || !n.MacTableLibvirt || n.Name != "lan" {
		t.Errorf("lan = %+v, %v", n, err)
	}
	n, err = f.Network("hostbr")
	if err != nil || n == nil || n.Bridge != "br0" || n.MacTableLibvirt {
		t.Errorf("hostbr = %+v, %v", n, err)
	}
	if n, err := f.Network("absent"); n != nil || err != nil {
		t.Errorf("absent = %+v, %v; want nil, nil", n, err)
	}
	if _, err := f.Network("broken"); err == nil || !strings.Contains(err.Error(), "broken.xml") {
		t.Errorf("broken = %v, want an error naming the file", err)
	}
	if _, err := f.Network("../x"); err == nil {
		t.Error("a network name with a slash was looked up")
	}
}

func TestParseNetworkHookData(t *testing.T) {
	data, err := os.ReadFile("../../testdata/libvirt-9.0/network-hostbr-port-created-begin.xml")
	if err != nil {
		t.Fatal(err)
	}
	n, err := ParseNetwork(data)
	if err != nil || n.Name != "hostbr" || n.Bridge != "br0" {
		t.Errorf("ParseNetwork = %+v, %v", n, err)
	}
}

func TestPortOwner(t *testing.T) {
	dir := t.TempDir()
	domain := func(name, tap string) string {
		d := lab.Domain{Name: name, NICs: lab.BridgeNICs("br0", tap+"/52:54:00:00:00:01")}
		return d.Live(lab.Status{})
	}
	write(t, filepath.Join(dir, "web1.xml"), domain("web1", "vnet1"))
	write(t, filepath.Join(dir, "db1.xml"), domain("db1", "vnet2"))
	write(t, filepath.Join(dir, "notes.txt"), "not a guest")
	f := New(Paths{QemuRunDir: dir})
	for port, want := range map[string]string{"vnet1": "web1", "vnet2": "db1", "vnet9": ""} {
		if got, err := f.PortOwner(port); err != nil || got != want {
			t.Errorf("PortOwner(%s) = %q, %v; want %q", port, got, err, want)
		}
	}
	write(t, filepath.Join(dir, "bad.xml"), "<domstatus>")
	// A broken file owns no port, but does not hide the others.
	if got, err := New(Paths{QemuRunDir: dir}).PortOwner("vnet1"); err != nil || got != "web1" {
		t.Errorf("PortOwner beside a broken file = %q, %v", got, err)
	}
}

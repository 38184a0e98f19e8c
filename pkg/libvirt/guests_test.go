package libvirt

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fdbhook/fdbhook/test/lab"
)

func liveXML(name, tap string) string {
	return lab.Domain{Name: name, Type: "qemu", NICs: lab.BridgeNICs("br0", tap+"/52:54:00:00:00:01")}.Live(lab.Status{})
}

func TestReadGuests(t *testing.T) {
	dir := t.TempDir()
	// File names sort the other way round from guest names.
	write(t, filepath.Join(dir, "a.xml"), liveXML("zeta", "vnet1"))
	write(t, filepath.Join(dir, "b.xml"), liveXML("alpha", "vnet2"))
	write(t, filepath.Join(dir, "notes.txt"), "not a guest")
	write(t, filepath.Join(dir, "bad.xml"), "<domstatus>")
	guests, skipped, err := ReadGuests(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(guests) != 2 || guests[0].Name != "alpha" || guests[1].Name != "zeta" {
		t.Errorf("guests %v, want alpha and zeta, in that order", guests)
	}
	var fe *FileError
	if len(skipped) != 1 || !errors.As(skipped[0], &fe) || fe.Path != filepath.Join(dir, "bad.xml") {
		t.Errorf("skipped %v, want bad.xml", skipped)
	}
	if owners := PortOwners(guests); len(owners) != 2 || owners["vnet1"] != "zeta" || owners["vnet2"] != "alpha" {
		t.Errorf("PortOwners = %v", owners)
	}

	guests, skipped, err = ReadGuests(filepath.Join(dir, "missing"))
	if err != nil || len(guests) != 0 || len(skipped) != 0 {
		t.Errorf("a missing directory: %v, %v, %v; want nothing", guests, skipped, err)
	}
}

// A live XML that cannot be read may belong to the port's owner: the
// lookup fails rather than say nobody owns the port.
func TestPortOwnerUnreadableFile(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "web1.xml"), liveXML("web1", "vnet1"))
	if err := os.Mkdir(filepath.Join(dir, "db1.xml"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got, err := New(Paths{QemuRunDir: dir}).PortOwner("vnet2"); err == nil || !strings.Contains(err.Error(), "db1.xml") {
		t.Errorf("PortOwner beside an unreadable file = %q, %v; want an error naming it", got, err)
	}
}

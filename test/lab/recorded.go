package lab

import (
	"os"
	"path/filepath"
	"testing"
)

// Recorded returns a file as libvirt wrote it, kept in testdata/DIR at the
// repository's root (libvirt-9.0 for qemu and networks, libvirt-9.0-lxc
// for containers), for a test two directories deep (pkg/NAME, test/NAME).
func Recorded(tb testing.TB, dir, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(RepoRoot, "testdata", dir, name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

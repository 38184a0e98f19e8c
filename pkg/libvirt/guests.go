package libvirt

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/fdbhook/fdbhook/pkg/guest"
)

// FileError is a guest file that could not be read or parsed.
type FileError struct {
	Path string
	Err  error
}

func (e *FileError) Error() string { return e.Path + ": " + e.Err.Error() }
func (e *FileError) Unwrap() error { return e.Err }

// ReadGuests parses every *.xml in dir as a domain (or a <domstatus>
// around one: the live XML of a running guest), sorted by guest name. A
// file gone by the time it is read (the guest stopped, or was undefined)
// is left out, as is a missing directory. A file that cannot be read or
// parsed is left out and returned in skipped, as a *FileError; err is set
// only when the directory cannot be listed.
func ReadGuests(dir string) (guests []*guest.Guest, skipped []error, err error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.xml"))
	if err != nil {
		return nil, nil, err
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err == nil {
			var g *guest.Guest
			if g, err = guest.Parse(data); err == nil {
				guests = append(guests, g)
				continue
			}
		}
		skipped = append(skipped, &FileError{Path: file, Err: err})
	}
	slices.SortFunc(guests, func(a, b *guest.Guest) int { return strings.Compare(a.Name, b.Name) })
	return guests, skipped, nil
}

// PortOwners maps each host-side port (a NIC's target device) of guests
// to the guest naming it.
func PortOwners(guests []*guest.Guest) map[string]string {
	owners := map[string]string{}
	for _, g := range guests {
		for _, n := range g.NICs {
			if n.Target != "" {
				owners[n.Target] = g.Name
			}
		}
	}
	return owners
}

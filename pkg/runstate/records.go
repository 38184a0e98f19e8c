package runstate

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// records are one JSON file per guest in a directory of the run directory:
// the migration marks ("migration") and the followed MACs ("followed").
type records struct {
	d Dir
	// sub is the directory's name; what names a record in errors
	// ("migration mark").
	sub, what string
}

func (d Dir) marks() records    { return records{d, "migration", "migration mark"} }
func (d Dir) followed() records { return records{d, "followed", "followed MACs record"} }

func (r records) dir() string { return filepath.Join(string(r.d), r.sub) }

// path names a guest's record. libvirt's guest names cannot contain '/',
// but the name is escaped anyway so that no name can leave the directory.
func (r records) path(guest string) string {
	return filepath.Join(r.dir(), url.PathEscape(guest)+".json")
}

// put writes v as the guest's record, atomically (a rename), replacing any
// earlier one.
func (r records) put(guest string, v any) error {
	if guest == "" {
		return fmt.Errorf("%s without a guest name", r.what)
	}
	if err := os.MkdirAll(r.dir(), 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", r.dir(), err)
	}
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := r.d.writeAtomic(r.path(guest), append(data, '\n')); err != nil {
		return fmt.Errorf("%s of %s: %w", r.what, guest, err)
	}
	return nil
}

// get reads the guest's record into v; ok is false when there is none.
// named returns the guest name the record holds, which must be guest's.
func (r records) get(guest string, v any, named func() string) (ok bool, err error) {
	data, err := os.ReadFile(r.path(guest))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading %s of %s: %w", r.what, guest, err)
	}
	if err := json.Unmarshal(data, v); err != nil || named() != guest {
		return false, fmt.Errorf("%s %s is damaged", r.what, r.path(guest))
	}
	return true, nil
}

// clear removes the guest's record; no record is not an error.
func (r records) clear(guest string) error {
	err := os.Remove(r.path(guest))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing %s of %s: %w", r.what, guest, err)
	}
	return nil
}

// guests lists the guests that have a record (names that do not unescape
// are skipped).
func (r records) guests() ([]string, error) {
	ents, err := os.ReadDir(r.dir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", r.dir(), err)
	}
	var out []string
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue
		}
		if guest, err := url.PathUnescape(name); err == nil {
			out = append(out, guest)
		}
	}
	return out, nil
}

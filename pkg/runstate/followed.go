package runstate

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
)

// Followed records the MACs the watcher authorised on one guest's ports
// under undeclared_macs = "follow", for the guest's present life: the
// start hook clears it, the stop hook removes the entries it names and
// then the record. The watcher and reconcile read it so that a followed
// MAC's entry is neither stale to them nor lost after a restart.
type Followed struct {
	Guest string `json:"guest"`
	// NICs are the followed MACs of each NIC, by the NIC's own MAC.
	NICs map[string]FollowedNIC `json:"nics"`
}

// FollowedNIC is what one NIC follows.
type FollowedNIC struct {
	// MACs are the authorised MACs, in the order they were followed.
	MACs []string `json:"macs,omitempty"`
	// Full: the NIC sent from more MACs than follow_max allows; its port's
	// MAC Authentication Bypass stays off until the guest stops.
	Full bool `json:"full,omitempty"`
}

func (d Dir) followedDir() string { return filepath.Join(string(d), "followed") }

// followedPath names a guest's record, escaped as markPath is.
func (d Dir) followedPath(guest string) string {
	return filepath.Join(d.followedDir(), url.PathEscape(guest)+".json")
}

// PutFollowed writes f atomically, replacing the guest's earlier record.
func (d Dir) PutFollowed(f Followed) error {
	if f.Guest == "" {
		return errors.New("followed MACs without a guest name")
	}
	if err := os.MkdirAll(d.followedDir(), 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", d.followedDir(), err)
	}
	data, err := json.Marshal(f)
	if err != nil {
		return err
	}
	return d.writeAtomic(d.followedPath(f.Guest), append(data, '\n'))
}

// GetFollowed reads a guest's record; ok is false when there is none.
func (d Dir) GetFollowed(guest string) (f Followed, ok bool, err error) {
	if d == "" {
		return Followed{}, false, nil
	}
	data, err := os.ReadFile(d.followedPath(guest))
	if errors.Is(err, fs.ErrNotExist) {
		return Followed{}, false, nil
	}
	if err != nil {
		return Followed{}, false, fmt.Errorf("reading the followed MACs of %s: %w", guest, err)
	}
	if err := json.Unmarshal(data, &f); err != nil || f.Guest != guest {
		return Followed{}, false, fmt.Errorf("followed MACs record %s is damaged", d.followedPath(guest))
	}
	return f, true, nil
}

// ClearFollowed removes a guest's record; no record is not an error.
func (d Dir) ClearFollowed(guest string) error {
	if d == "" {
		return nil
	}
	err := os.Remove(d.followedPath(guest))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing the followed MACs of %s: %w", guest, err)
	}
	return nil
}

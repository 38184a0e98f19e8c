package runstate

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

// PutFollowed writes f atomically, replacing the guest's earlier record.
func (d Dir) PutFollowed(f Followed) error { return d.followed().put(f.Guest, f) }

// GetFollowed reads a guest's record; ok is false when there is none.
func (d Dir) GetFollowed(guest string) (f Followed, ok bool, err error) {
	if d == "" {
		return Followed{}, false, nil
	}
	ok, err = d.followed().get(guest, &f, func() string { return f.Guest })
	if !ok {
		return Followed{}, false, err
	}
	return f, true, nil
}

// ClearFollowed removes a guest's record; no record is not an error.
func (d Dir) ClearFollowed(guest string) error {
	if d == "" {
		return nil
	}
	return d.followed().clear(guest)
}

// FollowedGuests lists the guests that have a record, in one read of the
// directory: the watcher's every batch asks about every running guest,
// most of which follow nothing.
func (d Dir) FollowedGuests() (map[string]bool, error) {
	if d == "" {
		return nil, nil
	}
	guests, err := d.followed().guests()
	if err != nil {
		return nil, err
	}
	have := make(map[string]bool, len(guests))
	for _, g := range guests {
		have[g] = true
	}
	return have, nil
}

package runstate

import (
	"os"
	"reflect"
	"testing"
)

// TestFollowed: a record reads back as written, is replaced whole, and is
// gone after ClearFollowed; a damaged one is an error, not an empty record.
func TestFollowed(t *testing.T) {
	d := Dir(t.TempDir())
	if _, ok, err := d.GetFollowed("g1"); ok || err != nil {
		t.Fatalf("no record: ok %v, err %v", ok, err)
	}
	f := Followed{Guest: "g1", NICs: map[string]FollowedNIC{"52:54:00:aa:cc:01": {MACs: []string{"02:00:00:00:00:01"}, Full: true}}}
	if err := d.PutFollowed(f); err != nil {
		t.Fatal(err)
	}
	got, ok, err := d.GetFollowed("g1")
	if !ok || err != nil || !reflect.DeepEqual(got, f) {
		t.Fatalf("read back %+v, %v, %v; want %+v", got, ok, err, f)
	}
	if err := d.ClearFollowed("g1"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := d.GetFollowed("g1"); ok {
		t.Fatal("record still there after ClearFollowed")
	}
	if err := d.ClearFollowed("g1"); err != nil {
		t.Fatalf("clearing twice: %v", err)
	}
	os.MkdirAll(d.followed().dir(), 0o755)
	os.WriteFile(d.followed().path("g2"), []byte("{"), 0o644)
	if _, ok, err := d.GetFollowed("g2"); ok || err == nil {
		t.Fatalf("damaged record: ok %v, err %v", ok, err)
	}
}

// TestFollowedGuests: one read of the directory names exactly the guests
// with a record (escaped names included); none before the first record.
func TestFollowedGuests(t *testing.T) {
	d := Dir(t.TempDir())
	if have, err := d.FollowedGuests(); err != nil || len(have) != 0 {
		t.Fatalf("no directory yet: %v, %v", have, err)
	}
	for _, g := range []string{"g1", "web 2%"} {
		if err := d.PutFollowed(Followed{Guest: g}); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.ClearFollowed("g1"); err != nil {
		t.Fatal(err)
	}
	have, err := d.FollowedGuests()
	if err != nil || !reflect.DeepEqual(have, map[string]bool{"web 2%": true}) {
		t.Fatalf("got %v, %v; want only web 2%%", have, err)
	}
}

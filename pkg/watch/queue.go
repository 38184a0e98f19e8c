package watch

import (
	"context"
	"sync"
	"time"
)

// Trigger is what a reconcile of a guest was asked for.
type Trigger int

const (
	// Changed: something about the guest changed. Its ports are put back
	// as a start leaves them, except that an entry that roamed to another
	// port is reported, not moved back: while the guest runs here a roam
	// means another port sent its MAC (a duplicate or a spoof), and while
	// it is paused or migrating away a roam is expected.
	Changed Trigger = iota
	// Started: the guest started or resumed here. Its entries are written
	// on its own taps even where they had roamed.
	Started
	// Migrated: an incoming migration finished here (resumed with detail
	// migrated or post-copy). The guest gets everything a start gives it,
	// and its migration mark is cleared.
	Migrated
)

func (t Trigger) String() string {
	switch t {
	case Started:
		return "started"
	case Migrated:
		return "migrated"
	}
	return "changed"
}

// key names what a queued reconcile is about: a guest, or a port whose
// guest is not known yet (a hotplugged tap shows up before libvirt
// rewrites the guest's live XML).
type key struct {
	port  bool
	name  string
	index int // a port known by its index only (FDB notifications)
}

type item struct {
	trigger Trigger
	due     time.Time
	// attempt counts the failed reconciles of this key in a row.
	attempt int
	why     string
}

// batch is what the worker does in one go, under one lock and one kernel
// snapshot.
type batch struct {
	items map[key]item
	// resync: reconcile every running guest and delete stale entries;
	// reload: read the configuration first.
	resync, reload bool
	why            []string
}

// queue collects reconcile requests keyed by guest (or port). A key
// waiting to be worked on absorbs later requests for it: one reconcile
// serves a burst. Requests become due after a short debounce; a failed
// key is put back with a backoff.
type queue struct {
	mu      sync.Mutex
	items   map[key]item
	pending batch
	// resyncDue delays a pending resync (one retried after a failure).
	resyncDue time.Time
	debounce  time.Duration
	now       func() time.Time
	wake      chan struct{}
}

func newQueue(debounce time.Duration, now func() time.Time) *queue {
	return &queue{items: map[key]item{}, debounce: debounce, now: now, wake: make(chan struct{}, 1)}
}

func (q *queue) poke() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// add asks for a reconcile of k after the debounce; a key already waiting
// keeps the stronger trigger and the earlier due time.
func (q *queue) add(k key, t Trigger, why string) {
	q.addAt(k, t, why, q.now().Add(q.debounce), 0)
}

func (q *queue) addAt(k key, t Trigger, why string, due time.Time, attempt int) {
	q.mu.Lock()
	if it, ok := q.items[k]; ok {
		it.trigger = max(it.trigger, t)
		if due.Before(it.due) {
			it.due = due
		}
		it.attempt = max(it.attempt, attempt)
		q.items[k] = it
	} else {
		q.items[k] = item{trigger: t, due: due, attempt: attempt, why: why}
	}
	q.mu.Unlock()
	q.poke()
}

// retry puts k back after a backoff that doubles with every attempt.
func (q *queue) retry(k key, it item, backoff time.Duration) {
	it.attempt++
	q.addAt(k, it.trigger, it.why, q.now().Add(backoff<<min(it.attempt-1, 6)), it.attempt)
}

// resync asks for a reconcile of every running guest.
func (q *queue) resync(why string, reload bool) {
	q.resyncAfter(0, why, reload)
}

// resyncAfter asks for a resync no sooner than after d.
func (q *queue) resyncAfter(d time.Duration, why string, reload bool) {
	q.mu.Lock()
	if due := q.now().Add(d); d > 0 && (!q.pending.resync || due.After(q.resyncDue)) {
		q.resyncDue = due
	}
	q.pending.resync = true
	q.pending.reload = q.pending.reload || reload
	q.pending.why = append(q.pending.why, why)
	q.mu.Unlock()
	q.poke()
}

// next waits until something is due, the timer fires (then it returns a
// resync) or ctx ends (ok false).
func (q *queue) next(ctx context.Context, timer <-chan time.Time) (b batch, ok bool) {
	for {
		q.mu.Lock()
		now := q.now()
		var wait time.Duration = -1
		if q.pending.resync {
			if d := q.resyncDue.Sub(now); d > 0 {
				wait = d
			} else {
				b = q.pending
				q.pending, q.resyncDue = batch{}, time.Time{}
			}
		}
		for k, it := range q.items {
			if !it.due.After(now) {
				if b.items == nil {
					b.items = map[key]item{}
				}
				b.items[k] = it
				delete(q.items, k)
			} else if d := it.due.Sub(now); wait < 0 || d < wait {
				wait = d
			}
		}
		q.mu.Unlock()
		if b.resync || len(b.items) > 0 {
			return b, true
		}
		var after <-chan time.Time
		var t *time.Timer
		if wait >= 0 {
			t = time.NewTimer(wait)
			after = t.C
		}
		fired := false
		select {
		case <-ctx.Done():
		case <-q.wake:
		case <-after:
		case <-timer:
			fired = true
		}
		if t != nil {
			t.Stop()
		}
		switch {
		case ctx.Err() != nil:
			return batch{}, false
		case fired:
			return batch{resync: true, why: []string{"timer"}}, true
		}
	}
}

// len reports how many keys wait.
func (q *queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

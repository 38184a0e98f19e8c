package watch

import (
	"context"
	"sync"
	"time"
)

// key names what a queued reconcile is about: a guest, or a port whose
// guest is not known yet (a hotplugged tap shows up before libvirt
// rewrites the guest's live XML).
type key struct {
	port  bool
	name  string
	index int // a port known by its index only (FDB notifications)
}

type item struct {
	due time.Time
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
// key is put back with a backoff. It also keeps the resync timer: a
// resync of everything every interval.
type queue struct {
	mu      sync.Mutex
	items   map[key]item
	pending batch
	// resyncDue delays a pending resync (one retried after a failure).
	resyncDue time.Time
	// every is the resync timer's interval (0: none); timerDue is when it
	// fires next.
	every    time.Duration
	timerDue time.Time
	debounce time.Duration
	clock    Clock
	wake     chan struct{}
}

func newQueue(debounce time.Duration, clock Clock) *queue {
	return &queue{items: map[key]item{}, debounce: debounce, clock: clock, wake: make(chan struct{}, 1)}
}

func (q *queue) poke() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// add asks for a reconcile of k after the debounce; a key already waiting
// keeps the earlier due time.
func (q *queue) add(k key, why string) {
	q.addAt(k, why, q.clock.Now().Add(q.debounce), 0)
}

func (q *queue) addAt(k key, why string, due time.Time, attempt int) {
	q.mu.Lock()
	if it, ok := q.items[k]; ok {
		if due.Before(it.due) {
			it.due = due
		}
		it.attempt = max(it.attempt, attempt)
		q.items[k] = it
	} else {
		q.items[k] = item{due: due, attempt: attempt, why: why}
	}
	q.mu.Unlock()
	q.poke()
}

// maxBackoffShift caps the doubling of a retry's backoff: the seventh
// retry and later wait 64 times the first one.
const maxBackoffShift = 6

// retry puts k back after a backoff that doubles with every attempt.
func (q *queue) retry(k key, it item, backoff time.Duration) {
	it.attempt++
	q.addAt(k, it.why, q.clock.Now().Add(backoff<<min(it.attempt-1, maxBackoffShift)), it.attempt)
}

// resync asks for a reconcile of every running guest.
func (q *queue) resync(why string, reload bool) {
	q.resyncAfter(0, why, reload)
}

// resyncAfter asks for a resync no sooner than after d.
func (q *queue) resyncAfter(d time.Duration, why string, reload bool) {
	q.mu.Lock()
	if due := q.clock.Now().Add(d); d > 0 && (!q.pending.resync || due.After(q.resyncDue)) {
		q.resyncDue = due
	}
	q.pending.resync = true
	q.pending.reload = q.pending.reload || reload
	q.pending.why = append(q.pending.why, why)
	q.mu.Unlock()
	q.poke()
}

// setTimer makes the resync timer fire every d from now on (0: never).
func (q *queue) setTimer(d time.Duration) {
	q.mu.Lock()
	q.every, q.timerDue = d, q.clock.Now().Add(d)
	q.mu.Unlock()
	q.poke()
}

// take removes and returns what is due at now: the keys whose time has
// come, and a resync when one was asked for and its delay is over or the
// timer fired. wait is how long until the next key, delayed resync or
// timer is due (-1: nothing waits).
func (q *queue) take(now time.Time) (b batch, wait time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	wait = -1
	soonest := func(due time.Time) {
		if d := due.Sub(now); wait < 0 || d < wait {
			wait = d
		}
	}
	if q.pending.resync && q.resyncDue.After(now) {
		soonest(q.resyncDue)
	} else if q.pending.resync {
		b = q.pending
		q.pending, q.resyncDue = batch{}, time.Time{}
	}
	if q.every > 0 && !q.timerDue.After(now) {
		b.resync = true
		b.why = append(b.why, "timer")
		q.timerDue = now.Add(q.every)
	}
	if q.every > 0 {
		soonest(q.timerDue)
	}
	for k, it := range q.items {
		if it.due.After(now) {
			soonest(it.due)
			continue
		}
		if b.items == nil {
			b.items = map[key]item{}
		}
		b.items[k] = it
		delete(q.items, k)
	}
	return b, wait
}

// empty reports whether a batch holds no work.
func (b batch) empty() bool { return !b.resync && len(b.items) == 0 }

// next waits until something is due and returns it, or until ctx ends (ok
// false).
func (q *queue) next(ctx context.Context) (b batch, ok bool) {
	for {
		b, wait := q.take(q.clock.Now())
		if !b.empty() {
			return b, true
		}
		var after <-chan time.Time
		stop := func() {}
		if wait >= 0 {
			after, stop = q.clock.After(wait)
		}
		select {
		case <-ctx.Done():
		case <-q.wake:
		case <-after:
		}
		stop()
		if ctx.Err() != nil {
			return batch{}, false
		}
	}
}

// len reports how many keys wait.
func (q *queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

// nextDue is when the earliest key or asked-for resync is due, the timer
// left out; ok is false when none waits.
func (q *queue) nextDue() (due time.Time, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.pending.resync {
		due, ok = q.resyncDue, true
	}
	for _, it := range q.items {
		if !ok || it.due.Before(due) {
			due, ok = it.due, true
		}
	}
	return due, ok
}

package watch

import (
	"context"
	"testing"
	"time"
)

const ms = time.Millisecond

// takeAt returns what q hands out at epoch+at.
func takeAt(q *queue, c *fakeClock, at time.Duration) (batch, time.Duration) {
	c.AdvanceTo(epoch.Add(at))
	return q.take(c.Now())
}

// TestQueueDebounce: a request is due one debounce after it was asked,
// not a nanosecond before; until then the queue says how long to wait.
func TestQueueDebounce(t *testing.T) {
	c := newFakeClock()
	q := newQueue(15*ms, c)
	q.add(key{name: "g1"}, "test")
	if b, wait := takeAt(q, c, 15*ms-1); !b.empty() || wait != 1 {
		t.Fatalf("1 ns before the debounce: batch %+v, wait %v; want nothing yet and a wait of 1ns", b, wait)
	}
	b, wait := takeAt(q, c, 15*ms)
	if len(b.items) != 1 || b.resync {
		t.Fatalf("at the debounce: batch %+v, want g1", b)
	}
	if wait != -1 {
		t.Errorf("nothing left, but the queue says to wait %v", wait)
	}
}

// TestQueueBurstKeepsTheFirstDueTime: a request for a key that waits
// does not put it off: a steady stream of events for one guest cannot
// starve it.
func TestQueueBurstKeepsTheFirstDueTime(t *testing.T) {
	c := newFakeClock()
	q := newQueue(15*ms, c)
	q.add(key{name: "g1"}, "first")
	for at := ms; at < 15*ms; at += ms {
		c.AdvanceTo(epoch.Add(at))
		q.add(key{name: "g1"}, "again")
	}
	b, _ := takeAt(q, c, 15*ms)
	it, ok := b.items[key{name: "g1"}]
	if !ok || len(b.items) != 1 {
		t.Fatalf("batch %+v: want g1, due 15ms after the first event", b.items)
	}
	if it.why != "first" {
		t.Errorf("the merged request says %q, want the first event's reason", it.why)
	}
}

// TestQueueMerge: two requests for one key make one, with the higher
// attempt count and the first reason; a port key stays apart from the
// guest key of the same name.
func TestQueueMerge(t *testing.T) {
	c := newFakeClock()
	q := newQueue(15*ms, c)
	q.retry(key{name: "g1"}, item{attempt: 2, why: "retry"}, 10*ms)
	q.add(key{name: "g1"}, "an event meanwhile")
	q.add(key{port: true, name: "g1"}, "a port named like the guest")
	b, _ := takeAt(q, c, time.Second)
	if got := b.items[key{name: "g1"}]; got.attempt != 3 || got.why != "retry" || len(b.items) != 2 {
		t.Errorf("an event merged into a retry: %+v (batch %+v), want attempt 3, the retry's reason, and the port apart", got, b.items)
	}
}

// TestQueueBackoff pins a failed key's retry delays: the backoff, doubled
// at each attempt, at most 64 times the backoff from the seventh on.
func TestQueueBackoff(t *testing.T) {
	want := []time.Duration{100, 200, 400, 800, 1600, 3200, 6400, 6400, 6400}
	c := newFakeClock()
	q := newQueue(15*ms, c)
	it := item{why: "test"}
	for i, w := range want {
		start := c.Now()
		q.retry(key{name: "g1"}, it, 100*ms)
		if b, wait := q.take(start.Add(w*ms - 1)); !b.empty() || wait != 1 {
			t.Fatalf("retry %d: due before %v (batch %+v, wait %v)", i+1, w*ms, b, wait)
		}
		c.Advance(w * ms)
		b, _ := q.take(c.Now())
		got, ok := b.items[key{name: "g1"}]
		if !ok {
			t.Fatalf("retry %d: not due after %v", i+1, w*ms)
		}
		if got.attempt != i+1 || got.why != "test" {
			t.Fatalf("retry %d: item %+v, want attempt %d with the reason kept", i+1, got, i+1)
		}
		it = got
	}
}

// TestQueueDelayedResync: a resync put off (a retry after a failure) is
// not due before its delay, keeps a reload asked meanwhile, and an earlier
// request does not bring it forward; a resync asked without delay is due
// at once and takes every key that is due with it.
func TestQueueDelayedResync(t *testing.T) {
	c := newFakeClock()
	q := newQueue(15*ms, c)
	q.resyncAfter(80*ms, "retry", false)
	q.resync("netlink: ENOBUFS", true)
	if b, wait := takeAt(q, c, 80*ms-1); !b.empty() || wait != 1 {
		t.Fatalf("before the delay: batch %+v, wait %v", b, wait)
	}
	b, _ := takeAt(q, c, 80*ms)
	if !b.resync || !b.reload || len(b.why) != 2 {
		t.Fatalf("batch %+v: want the delayed resync with the reload and both reasons", b)
	}

	q.add(key{name: "g1"}, "test")
	q.resync("connected to libvirt", false)
	b, _ = q.take(c.Now())
	if !b.resync || b.reload || len(b.items) != 0 {
		t.Fatalf("an immediate resync: batch %+v, want a plain resync and g1 left for its debounce", b)
	}
	b, _ = takeAt(q, c, 95*ms)
	if b.resync || len(b.items) != 1 {
		t.Fatalf("after the debounce: batch %+v, want g1 alone", b)
	}
}

// TestQueueTimer: the resync timer fires every interval, counted from
// when it last fired, and setTimer starts it again from now with the new
// interval.
func TestQueueTimer(t *testing.T) {
	c := newFakeClock()
	q := newQueue(15*ms, c)
	q.setTimer(time.Minute)
	if b, wait := takeAt(q, c, time.Minute-1); !b.empty() || wait != 1 {
		t.Fatalf("before a minute: batch %+v, wait %v", b, wait)
	}
	for _, at := range []time.Duration{time.Minute, 2 * time.Minute} {
		b, wait := takeAt(q, c, at)
		if !b.resync || b.reload || len(b.why) != 1 || b.why[0] != "timer" || wait != time.Minute {
			t.Fatalf("at %v: batch %+v, next in %v; want the timer's resync and the next a minute later", at, b, wait)
		}
	}
	q.setTimer(5 * time.Second)
	if b, _ := takeAt(q, c, 2*time.Minute+5*time.Second-1); !b.empty() {
		t.Fatalf("the new interval fired early: %+v", b)
	}
	if b, _ := takeAt(q, c, 2*time.Minute+5*time.Second); !b.resync {
		t.Fatal("the timer did not fire 5 s after it was set to 5 s")
	}
}

// TestQueueNextWaitsOnTheClock: next sleeps, on the clock, exactly until
// the earliest key is due, wakes at once for a request asked meanwhile,
// and returns when its context ends.
func TestQueueNextWaitsOnTheClock(t *testing.T) {
	c := newFakeClock()
	q := newQueue(15*ms, c)
	q.add(key{name: "g1"}, "test")
	got := make(chan batch)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for {
			b, ok := q.next(ctx)
			if !ok {
				close(got)
				return
			}
			got <- b
		}
	}()
	if d := c.nextWait(t, "next with g1 waiting"); d != 15*ms {
		t.Fatalf("next sleeps %v, want the 15ms debounce", d)
	}
	q.resync("test", false)
	if b := <-got; !b.resync || len(b.items) != 0 {
		t.Fatalf("woken by a resync: %+v", b)
	}
	if d := c.nextWait(t, "next after the resync"); d != 15*ms {
		t.Fatalf("next sleeps %v, want what is left of g1's debounce", d)
	}
	c.Advance(15 * ms)
	if b := <-got; len(b.items) != 1 {
		t.Fatalf("at g1's time: %+v", b)
	}
	cancel() // nothing waits now: next sleeps until woken

	if _, open := <-got; open {
		t.Fatal("next returned a batch after its context ended")
	}
}

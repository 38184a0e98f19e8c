package watch

import "time"

// lostNotes turns the kernel's reports of lost notifications (ENOBUFS)
// into resyncs. The first loss asks for one at once; losses after it, while
// the holdoff since the last resync runs, ask for one more at its end. The
// holdoff doubles (up to max) for each resync that follows a loss within
// the holdoff, and falls back to min after a quiet one: a storm of losses
// is a resync now and one at the end of each holdoff, not one per ENOBUFS,
// and each resync rereads the guests and the kernel once.
type lostNotes struct {
	min, max time.Duration
	holdoff  time.Duration
	// last is when the last resync was asked for (zero: never); pending,
	// that a loss since then waits for last+holdoff.
	last    time.Time
	pending bool
	// losses and resyncs count, for the log.
	losses, resyncs int64
}

func newLostNotes(min, max time.Duration) *lostNotes {
	return &lostNotes{min: min, max: max, holdoff: min}
}

// lost records a loss at now and says whether to resync now.
func (l *lostNotes) lost(now time.Time) bool {
	l.losses++
	if l.pending {
		return false
	}
	if !l.last.IsZero() && now.Sub(l.last) < l.holdoff {
		l.pending = true
		return false
	}
	// A loss within one more holdoff after the last one's resync: losses
	// keep coming, wait longer next time.
	if !l.last.IsZero() && now.Sub(l.last) < 2*l.holdoff {
		l.holdoff = min(2*l.holdoff, l.max)
	} else {
		l.holdoff = l.min
	}
	l.last = now
	l.resyncs++
	return true
}

// due says whether a pending resync is due at now; it then counts as asked
// for, and the holdoff doubles.
func (l *lostNotes) due(now time.Time) bool {
	if !l.pending || now.Before(l.last.Add(l.holdoff)) {
		return false
	}
	l.pending = false
	l.last = now
	l.holdoff = min(2*l.holdoff, l.max)
	l.resyncs++
	return true
}

// deadline is when due should be asked next; the zero time when nothing
// waits.
func (l *lostNotes) deadline() time.Time {
	if !l.pending {
		return time.Time{}
	}
	return l.last.Add(l.holdoff)
}

package dynamostore

import (
	"context"
	"sync"
	"time"
)

// EncodeCursor makes a staff-list cursor at any position, as anyone who
// reads this code can: its tag is a checksum, not a secret.
var EncodeCursor = encodeCursor

// Waits is what a store waited between retries, recorded instead of slept.
type Waits struct {
	mu sync.Mutex
	d  []time.Duration
}

func (w *Waits) All() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Duration(nil), w.d...)
}

// RecordWaits makes st record its waits instead of sleeping them.
func RecordWaits(st *Store) *Waits {
	w := &Waits{}
	st.wait = func(ctx context.Context, d time.Duration) error {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.d = append(w.d, d)
		return ctx.Err()
	}
	return w
}

// RecordSweepWaits is RecordWaits for a sweep store.
func RecordSweepWaits(st *SweepStore) *Waits { return RecordWaits(st.store) }

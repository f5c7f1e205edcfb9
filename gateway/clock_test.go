package gateway

import (
	"sync"
	"testing"
	"time"
)

// Created times are strictly increasing in microseconds, even when the
// wall clock stands still or steps back, from any number of goroutines.
func TestCreatedClock(t *testing.T) {
	now := time.Date(2024, 1, 1, 0, 0, 0, 123456789, time.UTC)
	var mu sync.Mutex
	c := &createdClock{now: func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(-time.Nanosecond) // a clock stepping back
		return now
	}}
	const goroutines, each = 8, 500
	stamps := make(chan time.Time, goroutines*each)
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range each {
				stamps <- c.Now()
			}
		})
	}
	wg.Wait()
	close(stamps)
	seen := map[time.Time]bool{}
	for s := range stamps {
		if s.Nanosecond()%1000 != 0 || s.Location() != time.UTC {
			t.Fatalf("stamp %v is not whole microseconds in UTC", s)
		}
		if seen[s] {
			t.Fatalf("stamp %v given twice", s)
		}
		seen[s] = true
	}
	if first := c.Now(); !first.After(time.Date(2024, 1, 1, 0, 0, 0, 123456000, time.UTC).Add(goroutines*each*time.Microsecond - time.Microsecond)) {
		t.Fatalf("the clock went back: %v", first)
	}
}

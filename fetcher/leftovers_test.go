package fetcher_test

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/ipfs/go-cid"

	"github.com/pickup-ipfs/pickup/fetcher"
	"github.com/pickup-ipfs/pickup/fetcher/carstore"
	"github.com/pickup-ipfs/pickup/internal/ipfstest"
	"github.com/pickup-ipfs/pickup/pin"
	"github.com/pickup-ipfs/pickup/pin/pinlog"
)

// do commits a decision on the pin as actor; a refusal fails the test.
func (w *world) do(id uuid.UUID, actor string, decide func(pin.State) (pin.Payload, error)) {
	w.t.Helper()
	_, err := pinlog.New(w.log, nil).Commit(context.Background(), pinlog.Commit{RequestID: id, Actor: actor,
		Decide: func(s pin.State) (pinlog.Decision, error) {
			p, err := decide(s)
			return pinlog.Decision{Payload: p}, err
		}})
	if err != nil {
		w.t.Fatalf("%s on %s: %v", actor, id, err)
	}
}

// plant leaves in the store what an attempt of a request killed mid-way
// leaves: a CAR staged and never promoted, or (staged false) an upload
// written to and never finished.
func (w *world) plant(id uuid.UUID, attempt int, root cid.Cid, staged bool) {
	w.t.Helper()
	ctx := context.Background()
	up, err := w.cars.Stage(ctx, carstore.StagingKey(id.String(), attempt), carstore.Metadata{Root: root, RequestID: id.String()})
	if err != nil {
		w.t.Fatal(err)
	}
	if _, err := up.Write(make([]byte, 1000)); err != nil {
		w.t.Fatal(err)
	}
	if staged {
		if _, err := up.Complete(ctx); err != nil {
			w.t.Fatal(err)
		}
	}
}

// killedAttempt runs attempt 1 of the pin as a fetcher that dies: it
// claims, leaves a staged CAR and an unfinished upload, and its attempt is
// failed (handed back, so the retry is due at once).
func (w *world) killedAttempt(id uuid.UUID, root cid.Cid) {
	w.t.Helper()
	w.do(id, "killed", func(s pin.State) (pin.Payload, error) { return s.Claim("killed", time.Now(), time.Minute) })
	w.plant(id, 1, root, true)
	w.plant(id, 1, root, false)
	w.do(id, "killed", func(s pin.State) (pin.Payload, error) {
		return s.Fail("killed", 1, pin.ReasonHandedBack, "killed", false)
	})
	w.do(id, "decider", func(s pin.State) (pin.Payload, error) { return s.DecideRetry(pin.RetryPolicy{}) })
}

// staging lists the files in the store's staging/, uploads/ and tmp/.
func (w *world) staging() []string {
	w.t.Helper()
	var out []string
	for _, area := range []string{"staging", "uploads", "tmp"} {
		top := filepath.Join(w.carDir, area)
		err := filepath.WalkDir(top, func(path string, d fs.DirEntry, err error) error {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while listed: the sweep at work
			}
			if err == nil && !d.IsDir() {
				rel, _ := filepath.Rel(w.carDir, path)
				out = append(out, filepath.ToSlash(rel))
			}
			return err
		})
		if err != nil {
			w.t.Fatal(err)
		}
	}
	slices.Sort(out)
	return out
}

// waitStaging waits until the files in staging/, uploads/ and tmp/ are
// those ok accepts, and returns them.
func (w *world) waitStaging(what string, ok func([]string) bool) []string {
	w.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		files := w.staging()
		if ok(files) {
			return files
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("staging never %s: it holds %v", what, files)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A retry completed from the carpark (the root pinned meanwhile for
// another request) removes what the request's killed first attempt left,
// as a fetched one does: the reuse path used to return before the cleanup.
func TestRetryFromTheCarparkLeavesNothing(t *testing.T) {
	for _, reuse := range []bool{true, false} {
		name := map[bool]string{true: "pinned from the carpark", false: "fetched"}[reuse]
		t.Run(name, func(t *testing.T) {
			w := newWorld(t, ipfstest.GatewayOptions{})
			root := w.file(1<<20, 31)
			if reuse {
				stop := w.startPool(poolOptions{name: "first"})
				other := w.request(root)
				w.waitFor(other, "pinned", func(s pin.State) bool { return s.Phase == pin.PhasePinned })
				stop()
			}
			id := w.request(root)
			w.killedAttempt(id, root)
			if left := w.staging(); len(left) != 2 {
				t.Fatalf("the killed attempt left %v, want a staged CAR and an upload", left)
			}
			w.startPool(poolOptions{name: "second"})
			s := w.waitFor(id, "pinned", func(s pin.State) bool { return s.Phase == pin.PhasePinned })
			if fetched := count(w.events(id), pin.TypeCarUploaded) > 0; fetched == reuse {
				t.Fatalf("attempt %d fetched %v, want %v", s.Attempt, fetched, !reuse)
			}
			w.waitStaging("empty", func(files []string) bool { return len(files) == 0 })
		})
	}
}

// A pool that starts sweeps what attempts over for good left: every
// attempt of a pin that is final, or not in the log at all, and every
// attempt of a claimed pin but the claimed one, which another fetcher may
// still be running.
func TestPoolSweepsAtStart(t *testing.T) {
	w := newWorld(t, ipfstest.GatewayOptions{})
	root := w.file(1<<20, 32)
	stop := w.startPool(poolOptions{name: "first"})
	pinned := w.request(root)
	w.waitFor(pinned, "pinned", func(s pin.State) bool { return s.Phase == pin.PhasePinned })
	stop()

	// Killed after CarValidated, before its cleanup; and an earlier attempt
	// killed too.
	w.plant(pinned, 1, root, true)
	w.plant(pinned, 2, root, false)
	// Claimed by a live fetcher elsewhere at attempt 2: attempt 1 is over,
	// attempt 2 is not.
	claimed := w.request(w.file(1<<20, 33))
	w.killedAttempt(claimed, root)
	w.do(claimed, "elsewhere", func(s pin.State) (pin.Payload, error) { return s.Claim("elsewhere", time.Now(), time.Hour) })
	w.plant(claimed, 2, root, false)
	// A request the log never held.
	gone := uuid.New()
	w.plant(gone, 1, root, true)

	w.startPool(poolOptions{name: "second"})
	left := w.waitStaging("swept", func(files []string) bool { return len(files) == 1 })
	if got := left[0]; filepath.Dir(got) != "uploads" || !slices.Contains(w.openUploads(), carstore.StagingKey(claimed.String(), 2)) {
		t.Errorf("after the sweep staging holds %v, want only the live attempt 2 of %s", left, claimed)
	}
	if s := w.state(claimed); s.Fetcher != "elsewhere" || s.Attempt != 2 {
		t.Errorf("the claimed pin is now %s, attempt %d, by %q", s.Phase, s.Attempt, s.Fetcher)
	}
}

func (w *world) openUploads() []string {
	w.t.Helper()
	open, err := w.cars.OpenUploads(context.Background())
	if err != nil {
		w.t.Fatal(err)
	}
	var keys []string
	for _, u := range open {
		keys = append(keys, u.Key)
	}
	return keys
}

// An attempt that finds its claim gone (the watchdog expired it and
// another fetcher took attempt 2) cleans up what it left, and nothing of
// the attempt that took over.
func TestLostClaimLeavesTheNextAttemptAlone(t *testing.T) {
	w := newWorld(t, ipfstest.GatewayOptions{Tamper: ipfstest.Tamper{StallAt: 3}})
	root := w.file(2<<20, 34)
	w.startPool(poolOptions{name: "f1", cfg: fetcher.Config{Lease: time.Second}})
	id := w.request(root)
	w.waitFor(id, "fetching", func(s pin.State) bool { return s.Phase == pin.PhaseFetching && s.Fetcher == "f1" })
	w.waitStaging("uploading", func(files []string) bool { return len(files) == 1 })

	// As the watchdog and the decider would, then another fetcher's claim,
	// which has begun its upload.
	w.do(id, "watchdog", func(s pin.State) (pin.Payload, error) {
		return s.Fail(s.Fetcher, s.Attempt, pin.ReasonHandedBack, "expired by hand", false)
	})
	w.do(id, "decider", func(s pin.State) (pin.Payload, error) { return s.DecideRetry(pin.RetryPolicy{}) })
	w.do(id, "elsewhere", func(s pin.State) (pin.Payload, error) { return s.Claim("elsewhere", time.Now(), time.Hour) })
	w.plant(id, 2, root, false)
	w.plant(id, 1, root, true) // a stray write of attempt 1, after it was over

	left := w.waitStaging("cleaned up after attempt 1", func(files []string) bool { return len(files) == 1 })
	if keys := w.openUploads(); len(left) != 1 || !slices.Equal(keys, []string{carstore.StagingKey(id.String(), 2)}) {
		t.Errorf("after attempt 1 lost its claim, staging holds %v (open uploads %v), want attempt 2's upload only", left, keys)
	}
}

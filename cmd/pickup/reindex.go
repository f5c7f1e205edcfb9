package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/fetcher/carstore"
)

// reindexStore is the carpark as reindex uses it (carstore.Dir and
// carstore.S3 are).
type reindexStore interface {
	ListCars(ctx context.Context, after string, fn func(carstore.Stored) error) error
	ReadRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error)
	Open(ctx context.Context, key string) (io.ReadCloser, error)
	PutIndex(ctx context.Context, st carstore.Stored, index []byte) (string, error)
}

// runReindex builds the block index and the root's mapping of every CAR
// in the carpark that lacks them (CARs pinned before the fetcher wrote
// indexes), reading each CAR once and checking every block against its
// CID; a CAR that fails is reported and skipped, never indexed.
//
// It is resumable: a state file holds the key of the last CAR done, and a
// run that finds one (a run killed or failed) goes on after it; a run that
// completes removes it. It is idempotent: a CAR whose index is there (a
// CARv2 index that reads whole) and whose mapping is there is left as it
// is, so a run over an indexed carpark writes nothing and says so.
//
// It lists the CARs to do before it starts, to show how far it is (about
// 200 bytes of memory a CAR: a gigabyte for five million), and exits 1
// when it skipped a corrupt CAR: that CAR needs repair.
func runReindex(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "reindex")
	carDir := f.string("car-dir", "data/cars", "local CAR store (used when no carpark bucket is set)", "PICKUP_CAR_DIR")
	bucket := f.string("carpark-bucket", "", "S3 carpark bucket; setting it selects the S3 store", "PICKUP_CARPARK_BUCKET")
	endpoint := f.string("s3-endpoint", "", "S3-compatible endpoint URL (path-style); empty means AWS", "PICKUP_S3_ENDPOINT")
	region := f.string("s3-region", "", "S3 region (default: AWS_REGION)", "PICKUP_S3_REGION")
	state := f.string("reindex-state", "", "file holding the key of the last CAR done, for a killed run to resume after it (default: reindex.state in --car-dir, or reindex-<bucket>.state in the working directory)", "PICKUP_REINDEX_STATE")
	pause := f.duration("reindex-pause", 0, "pause after each CAR, to spare a busy store", []string{"PICKUP_REINDEX_PAUSE"})
	f.Usage = func() {
		fmt.Fprintln(f.Output(), "pickup reindex [flags]: build the block index and root mapping of every CAR in the carpark that lacks them (resumable, idempotent)")
		f.PrintDefaults()
	}
	if err := f.parse(args); err != nil {
		return err
	}
	if f.NArg() != 0 {
		return fmt.Errorf("%w: reindex takes no arguments", errUsage)
	}
	if *pause < 0 {
		return fmt.Errorf("%w: --reindex-pause %s: negative", errUsage, *pause)
	}
	var store reindexStore
	if *bucket == "" {
		d, err := carstore.NewDir(*carDir, nil)
		if err != nil {
			return err
		}
		defer d.Close()
		store = d
		if *state == "" {
			*state = filepath.Join(*carDir, "reindex.state")
		}
	} else {
		// Reindex writes nothing to staging: the carpark bucket, under a
		// prefix, stands in for it.
		s, err := carstore.NewS3(ctx, carstore.S3Config{
			StagingBucket: *bucket, StagingPrefix: "staging/", CarparkBucket: *bucket,
			Endpoint: *endpoint, Region: *region,
		}, nil)
		if err != nil {
			return err
		}
		store = s
		if *state == "" {
			*state = "reindex-" + *bucket + ".state"
		}
	}
	return reindex(ctx, e, store, *state, *pause)
}

// reindex is the run: list, then index what lacks an index, remembering
// the last key done.
func reindex(ctx context.Context, e *env, store reindexStore, state string, pause time.Duration) error {
	after, err := os.ReadFile(state)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return fmt.Errorf("read the state file: %w", err)
	}
	resume := strings.TrimSpace(string(after))
	if resume != "" {
		fmt.Fprintf(e.stderr, "an earlier run stopped after %s (%s): resuming after it\n", resume, state)
	}
	var cars []carstore.Stored
	if err := store.ListCars(ctx, resume, func(st carstore.Stored) error {
		cars = append(cars, st)
		return nil
	}); err != nil {
		return err
	}

	show := reindexProgress(e.stderr, len(cars))
	var indexed, had, corrupt int
	for i, st := range cars {
		done, err := reindexCAR(ctx, store, st)
		switch {
		case errors.Is(err, carstore.ErrCorrupt):
			corrupt++
			fmt.Fprintf(e.stderr, "skipped %s, not indexed: %v\n", st.Key, err)
		case err != nil:
			return fmt.Errorf("after %d of %d CARs: %w (run again to resume)", i, len(cars), err)
		case done:
			indexed++
		default:
			had++
		}
		if err := writeState(state, st.Key); err != nil {
			return err
		}
		show(i + 1)
		if pause > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(pause):
			}
		}
	}
	show(-1)
	if err := os.Remove(state); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove the state file: %w", err)
	}
	if indexed == 0 && corrupt == 0 {
		fmt.Fprintf(e.stdout, "nothing to do: all %d CARs have their index\n", had)
		return nil
	}
	fmt.Fprintf(e.stdout, "indexed %d CARs; %d had their index; %d corrupt, skipped\n", indexed, had, corrupt)
	if corrupt > 0 {
		return fmt.Errorf("%d corrupt CARs were skipped (listed above): they need repair", corrupt)
	}
	return nil
}

// reindexCAR indexes one CAR unless it has its index and mapping, and says
// whether it did. A CAR that does not read as the CAR it should be is
// carstore.ErrCorrupt.
func reindexCAR(ctx context.Context, store reindexStore, st carstore.Stored) (bool, error) {
	if st.CarCID.Defined() && st.Root.Defined() {
		ok, err := hasIndex(ctx, store, st)
		if err != nil || ok {
			return false, err
		}
	}
	r, err := store.Open(ctx, st.Key)
	if err != nil {
		return false, err
	}
	built, err := carstore.BuildIndex(r)
	r.Close()
	if err != nil {
		return false, fmt.Errorf("read %s: %w", st.Key, err)
	}
	switch {
	case built.Bytes != st.Bytes:
		return false, fmt.Errorf("%w: read %d bytes of %s, which has %d", carstore.ErrCorrupt, built.Bytes, st.Key, st.Bytes)
	case st.CarCID.Defined() && built.CarCID != st.CarCID:
		return false, fmt.Errorf("%w: %s hashes to %s, not its CAR CID %s", carstore.ErrCorrupt, st.Key, built.CarCID, st.CarCID)
	case st.Root.Defined() && !built.Root.Equals(st.Root):
		return false, fmt.Errorf("%w: %s is rooted at %s, its metadata says %s", carstore.ErrCorrupt, st.Key, built.Root, st.Root)
	}
	st.CarCID, st.Root = built.CarCID, built.Root
	if _, err := store.PutIndex(ctx, st, built.Index); err != nil {
		return false, err
	}
	return true, nil
}

// hasIndex reports whether the CAR has an index that reads whole and its
// root's mapping.
func hasIndex(ctx context.Context, store reindexStore, st carstore.Stored) (bool, error) {
	r, err := store.ReadRange(ctx, carstore.IndexKey(st.Key), 0, -1)
	if errors.Is(err, carstore.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	b, err := io.ReadAll(r)
	r.Close()
	if err != nil {
		return false, fmt.Errorf("read the index of %s: %w", st.Key, err)
	}
	if carstore.CheckIndex(b) != nil {
		return false, nil
	}
	m, err := store.ReadRange(ctx, carstore.RootMapKey(st.Root, st.CarCID), 0, 0)
	if errors.Is(err, carstore.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	m.Close()
	return true, nil
}

// writeState records the last key done: written whole, then renamed over
// the last, so that a kill leaves the old key or the new, never half.
func writeState(path, key string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(key+"\n"), 0o644); err != nil {
		return fmt.Errorf("write the state file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write the state file: %w", err)
	}
	return nil
}

// reindexProgress shows how many of the CARs are done (see showProgress);
// show(-1) ends it.
func reindexProgress(w io.Writer, total int) func(done int) {
	show := showProgress(w, eventlog.Position(total), "indexing CARs", func(done eventlog.Position) string {
		return fmt.Sprintf("checked %d of %d CARs", done, total)
	})
	return func(done int) {
		if done >= 0 {
			show(eventlog.Position(done))
		}
	}
}

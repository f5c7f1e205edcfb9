package tests

import (
	"bytes"
	"crypto/sha256"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/pickup-ipfs/pickup/api"
	"github.com/pickup-ipfs/pickup/fetcher"
	"github.com/pickup-ipfs/pickup/fetcher/carstore"
)

// TestLeftoversAfterKills: fetchers on the directory store (the embedded
// default), each killed with SIGKILL at one step of an attempt
// (PICKUP_TEST_KILL_AT), then a fetcher started again: once it has swept
// and the pin is pinned (by a new attempt, or by the killed one when it
// died after recording it), staging/, uploads/ and tmp/ hold no file, and
// the carpark holds exactly one CAR per root, the DAG's. Every step but
// the last two leaves something behind when killed, which the test checks
// too, so that a kill that missed its step cannot pass for a clean one.
func TestLeftoversAfterKills(t *testing.T) {
	c := newCluster(t, clusterOptions{})
	cars := filepath.Join(c.dir, "cars")
	dirStore := []string{"PICKUP_STAGING_BUCKET=", "PICKUP_CARPARK_BUCKET=", "PICKUP_CAR_DIR=" + cars}
	gw := c.start("gateway", []string{"gateway"})
	c.start("projector", []string{"projector"})
	cl := c.client(gw.api())

	// want is the CAR CID of every root pinned so far: the carpark must
	// hold these and nothing else.
	want := map[string]bool{}
	pinned := func(root cid.Cid) {
		t.Helper()
		sum := sha256.Sum256(c.export(root))
		want[carstore.CarCID(sum[:]).String()] = true
	}
	steps := []struct {
		step string
		// leaves is the area the killed attempt must leave a file in.
		leaves []string
	}{
		{fetcher.StepUploading, []string{"uploads"}},
		{fetcher.StepUploaded, []string{"staging"}},
		{carstore.StepMetadataWritten, []string{"staging", "tmp"}},
		{carstore.StepMetadataPlaced, []string{"staging"}},
		{fetcher.StepValidated, nil},
	}
	for i, s := range steps {
		t.Run(s.step, func(t *testing.T) {
			root := c.file(3<<20+int64(i)*1234, uint64(700+i))
			killed := c.start("fetcher", []string{"fetcher"}, append(dirStore, "PICKUP_TEST_KILL_AT="+s.step)...)
			ps := cl.add(root.String(), "killed at "+s.step)
			waitKilled(t, killed, s.step)
			left := leftovers(t, cars)
			t.Logf("killed at %s, left %v", s.step, left)
			for _, area := range s.leaves {
				if len(left[area]) == 0 {
					t.Errorf("killed at %s, nothing left in %s/: the kill missed its step", s.step, area)
				}
			}
			recoverAndCount(t, c, cl, dirStore, cars, left, []string{ps.RequestID})
			pinned(root)
			checkCarpark(t, cars, want)
		})
	}

	// A reuse: a request's first attempt killed once it staged its CAR
	// (CarUploaded recorded), a second request of the root meanwhile; the
	// fetcher started then pins one of them by fetching and the other
	// from the carpark, and is killed once that is recorded, before its
	// cleanup.
	t.Run(fetcher.StepReused, func(t *testing.T) {
		root := c.file(3<<20+99, 799)
		killed := c.start("fetcher", []string{"fetcher"}, append(dirStore, "PICKUP_TEST_KILL_AT="+fetcher.StepUploaded)...)
		first := cl.add(root.String(), "staged, then reused")
		waitKilled(t, killed, fetcher.StepUploaded)
		if left := leftovers(t, cars); len(left["staging"]) == 0 {
			t.Fatalf("killed after staging, left %v: nothing staged", left)
		}
		second := cl.add(root.String(), "reused")
		killed = c.start("fetcher", []string{"fetcher"}, append(dirStore, "PICKUP_TEST_KILL_AT="+fetcher.StepReused)...)
		waitKilled(t, killed, fetcher.StepReused)
		left := leftovers(t, cars)
		t.Logf("killed during a reuse, left %v", left)
		recoverAndCount(t, c, cl, dirStore, cars, left, []string{first.RequestID, second.RequestID})
		pinned(root)
		checkCarpark(t, cars, want)
	})

	// Every fetcher stopped cleanly: the lock files of the killed ones went
	// when the next store opened the directory, the others' at Close.
	for _, p := range c.procs {
		if p.name == "fetcher" {
			p.stop(t)
		}
	}
	if locks, _ := os.ReadDir(filepath.Join(cars, "locks")); len(locks) != 0 {
		t.Errorf("locks/ holds %d lock files after every fetcher stopped", len(locks))
	}
}

// waitKilled waits for a fetcher started with PICKUP_TEST_KILL_AT=step to
// kill itself there.
func waitKilled(t *testing.T, p *process, step string) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(90 * time.Second):
		t.Fatalf("the fetcher was not killed at %s within 90s; logs:\n%s", step, tail(p.logs.Name()))
	}
	if !strings.Contains(tail(p.logs.Name()), `"step":"`+step+`"`) {
		t.Fatalf("the fetcher ended (%v) without reaching %s; logs:\n%s", p.err, step, tail(p.logs.Name()))
	}
}

// recoverAndCount starts a fetcher, checks that the files the killed one
// left in uploads/ and tmp/ went as it opened the store (before any
// attempt: they are a dead process's), waits for it to sweep and for the
// pins to be pinned, then checks that staging/, uploads/ and tmp/ hold
// nothing, and stops it.
func recoverAndCount(t *testing.T, c *cluster, cl *client, env []string, cars string, left map[string][]string, ids []string) {
	t.Helper()
	f := c.start("fetcher", []string{"fetcher"}, env...)
	for _, area := range []string{"uploads", "tmp"} {
		for _, name := range left[area] {
			if _, err := os.Stat(filepath.Join(cars, area, name)); err == nil {
				t.Errorf("%s/%s of the killed fetcher is still there once a fetcher started", area, name)
			}
		}
	}
	for _, id := range ids {
		if _, final := cl.waitStatus(id, 120*time.Second); final.Status != api.StatusPinned {
			t.Fatalf("pin %s ended %s: %v", id, final.Status, final.Info)
		}
	}
	waitUntil(t, 30*time.Second, "the fetcher swept", func() bool {
		b, _ := os.ReadFile(f.logs.Name())
		return bytes.Contains(b, []byte(`"msg":"swept what killed attempts left in staging"`))
	})
	if left := leftovers(t, cars); len(left) > 0 {
		t.Errorf("after recovery, left %v", left)
	}
	if err := f.stop(t); err != nil {
		t.Errorf("fetcher stopped with %v", err)
	}
}

// leftovers lists the files in staging/, uploads/ and tmp/ of the
// directory store at dir, by area.
func leftovers(t *testing.T, dir string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, area := range []string{"staging", "uploads", "tmp"} {
		top := filepath.Join(dir, area)
		err := filepath.WalkDir(top, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(top, path)
			out[area] = append(out[area], filepath.ToSlash(rel))
			return nil
		})
		if err != nil {
			t.Fatalf("list %s: %v", top, err)
		}
	}
	return out
}

// checkCarpark checks that carpark/ holds one CAR for each CAR CID in want,
// at its CarKey, and no other CAR.
func checkCarpark(t *testing.T, dir string, want map[string]bool) {
	t.Helper()
	var have []string
	err := filepath.WalkDir(filepath.Join(dir, "carpark"), func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && filepath.Ext(path) == ".car" {
			have = append(have, strings.TrimSuffix(filepath.Base(path), ".car"))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(have)
	var wanted []string
	for k := range want {
		wanted = append(wanted, k)
	}
	slices.Sort(wanted)
	if !slices.Equal(have, wanted) {
		t.Errorf("carpark holds CARs %v, want %v (one per root)", have, wanted)
	}
}

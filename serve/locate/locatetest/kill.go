package locatetest

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pickup-ipfs/pickup/serve/locate"
)

// killedCarBlocks is how many blocks each CAR of the killed writer has:
// enough that a kill lands inside an Add.
const (
	killedFirst     = 5_000
	killedCarBlocks = 20_000
)

// WriteUntilKilled is the killed writer's side, run in a child process
// (KilledWriter starts it): it adds Synthetic CARs one after another,
// printing "added N" after each Add returns, until it is killed.
func WriteUntilKilled(t *testing.T, s locate.Store) {
	ctx := context.Background()
	for i := 0; ; i++ {
		car, es := Synthetic(killedFirst+i, killedCarBlocks)
		if err := s.Add(ctx, car, es); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("added %d\n", i)
	}
}

// KilledWriter runs the test binary again as a child running test
// testName with env added (where the test calls WriteUntilKilled), kills
// it with SIGKILL in the middle of its Adds, and checks the lookup open
// gives: every CAR the child said it added is there whole, the one it was
// adding is there whole or not at all, and adding it again completes it.
func KilledWriter(t *testing.T, testName string, env []string, open func(t *testing.T) locate.Store) {
	cmd := exec.Command(os.Args[0], "-test.run=^"+testName+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	said := -1
	lines := bufio.NewScanner(out)
	for lines.Scan() {
		if n, ok := strings.CutPrefix(lines.Text(), "added "); ok {
			said, _ = strconv.Atoi(n)
		}
		if said >= 1 {
			break
		}
	}
	if said < 1 {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("the writer stopped before adding two CARs: %v", lines.Err())
	}
	// Into the next Add, which takes some 0.2 s (more under -race).
	time.Sleep(80 * time.Millisecond)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	go func() {
		for lines.Scan() {
			if n, ok := strings.CutPrefix(lines.Text(), "added "); ok {
				said, _ = strconv.Atoi(n)
			}
		}
	}()
	cmd.Wait()

	s := open(t)
	ctx := context.Background()
	var incomplete []int
	for i := 0; i <= said+2; i++ {
		car, es := Synthetic(killedFirst+i, killedCarBlocks)
		has, err := s.Has(ctx, car.CarCID)
		if err != nil {
			t.Fatal(err)
		}
		if i <= said && !has {
			t.Fatalf("CAR %d: the writer's Add returned, and it is not recorded", i)
		}
		for _, j := range []int{0, killedCarBlocks / 2, killedCarBlocks - 1} {
			locs, err := s.Locate(ctx, es[j].Multihash)
			if err != nil {
				t.Fatal(err)
			}
			if has != (len(locs) == 1) {
				t.Fatalf("CAR %d (recorded: %v): block %d located %d times", i, has, j, len(locs))
			}
		}
		if !has {
			incomplete = append(incomplete, i)
		}
	}
	t.Logf("killed after %d CARs added; %d of the next were not recorded", said+1, len(incomplete))
	for _, i := range incomplete {
		car, es := Synthetic(killedFirst+i, killedCarBlocks)
		if err := s.Add(ctx, car, es); err != nil {
			t.Fatal(err)
		}
		locs, err := s.Locate(ctx, es[killedCarBlocks-1].Multihash)
		if err != nil || len(locs) != 1 {
			t.Fatalf("CAR %d added again: %v, %v", i, locs, err)
		}
	}
}

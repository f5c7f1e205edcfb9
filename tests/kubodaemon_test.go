package tests

import (
	"bufio"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startKuboDaemon starts `ipfs daemon args...` of the kubo at bin with env
// (its IPFS_PATH), waits until it says it is ready, and stops it when tb
// ends; it returns the daemon's process id.
func startKuboDaemon(tb testing.TB, bin string, env []string, args ...string) int {
	tb.Helper()
	cmd := exec.Command(bin, append([]string{"daemon"}, args...)...)
	cmd.Env = env
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	tb.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	ready := make(chan struct{})
	var mu sync.Mutex
	var logs strings.Builder
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			mu.Lock()
			logs.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if strings.Contains(sc.Text(), "Daemon is ready") {
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
	case <-exited:
		mu.Lock()
		defer mu.Unlock()
		tb.Fatalf("kubo exited at start:\n%s", logs.String())
	case <-time.After(60 * time.Second):
		mu.Lock()
		defer mu.Unlock()
		tb.Fatalf("kubo not ready within 60s:\n%s", logs.String())
	}
	return cmd.Process.Pid
}

//go:build !linux

package s3test

import (
	"os/exec"
	"time"
)

// setDeathSignal does nothing where the kernel cannot tie the server's life
// to the test's; Cleanup still stops it when a test ends normally.
func setDeathSignal(*exec.Cmd) {}

// ProcessCPU is zero where the platform cannot tell.
func ProcessCPU(int) time.Duration { return 0 }

package main

import (
	"fmt"
	"io"
	"time"

	"github.com/pickup-ipfs/pickup/eventlog"
)

// lineEvery spaces the progress lines of a long command whose output is
// not a terminal (a log, a pipe).
const lineEvery = 5 * time.Second

// showProgress shows a long command's progress on w, towards total: the
// bar of progress on a terminal, otherwise the line line(at) says, every
// lineEvery. The returned func takes how far the command is (at most
// total); events copy and reindex show theirs through it.
func showProgress(w io.Writer, total eventlog.Position, what string, line func(at eventlog.Position) string) func(at eventlog.Position) {
	if bar := progress(w, total, what); bar != nil {
		return bar
	}
	last := time.Now()
	return func(at eventlog.Position) {
		if time.Since(last) < lineEvery {
			return
		}
		last = time.Now()
		fmt.Fprintln(w, line(at))
	}
}

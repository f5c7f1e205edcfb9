package terraform

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The operator's steps: terraform/README.md's Deploying section holds one
// shell block, the steps to deploy. The deployment test takes its plan by
// following them, in their order, where they can run offline (applyEnv):
// each `terraform` command in the environment, each `make` target must
// exist, each tool the steps run must be one the project installs; what
// needs AWS itself (`aws ...`, pushing the image) is skipped, and said so.

// readmeStep is one command of the Deploying steps.
type readmeStep struct {
	line string   // as written, comments removed
	args []string // its words, quotes removed; $(...) unwrapped
	env  []string // NAME=value of an `export` before it
}

var (
	fenceRe   = regexp.MustCompile("(?s)```sh\n(.*?)```")
	commandRe = regexp.MustCompile(`\$\(([^)]*)\)`)
)

// readmeSteps reads the commands of README.md's Deploying section.
func readmeSteps(t *testing.T) []readmeStep {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "terraform", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	start := strings.Index(doc, "\n## Deploying")
	if start < 0 {
		t.Fatal("terraform/README.md has no Deploying section")
	}
	section := doc[start+1:]
	if end := strings.Index(section[3:], "\n## "); end >= 0 {
		section = section[:end+3]
	}
	m := fenceRe.FindStringSubmatch(section)
	if m == nil {
		t.Fatal("terraform/README.md's Deploying section has no ```sh block of steps")
	}
	var steps []readmeStep
	var exports []string
	for _, raw := range strings.Split(m[1], "\n") {
		line := strings.TrimSpace(stripComment(raw))
		if line == "" {
			continue
		}
		// A command substitution runs a command of its own.
		if sub := commandRe.FindStringSubmatch(line); sub != nil {
			line = sub[1]
		}
		args := shellWords(line)
		if len(args) == 0 {
			continue
		}
		if args[0] == "export" {
			exports = append(exports, args[1:]...)
			continue
		}
		steps = append(steps, readmeStep{line: line, args: args, env: append([]string(nil), exports...)})
	}
	return steps
}

// stripComment removes a # comment that is outside quotes.
func stripComment(s string) string {
	var quote rune
	for i, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote == 0 && (r == '\'' || r == '"'):
			quote = r
		case quote == 0 && r == '#' && (i == 0 || s[i-1] == ' ' || s[i-1] == '\t'):
			return s[:i]
		}
	}
	return s
}

// shellWords splits a command line into words as sh does for the plain
// commands of the steps: spaces separate, quotes group; a pipe ends the
// first command (the rest is another, of a tool checked on its own).
func shellWords(s string) []string {
	var out []string
	var cur strings.Builder
	var quote rune
	inWord := false
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				out = append(out, cur.String())
				cur.Reset()
				inWord = false
			}
		case r == '|':
			if inWord {
				out = append(out, cur.String())
			}
			return out
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		out = append(out, cur.String())
	}
	return out
}

// flagValues returns the values of a flag given as -name=v or -name v.
func flagValues(args []string, name string) []string {
	var out []string
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "-"+name+"="); ok {
			out = append(out, v)
		} else if a == "-"+name && i+1 < len(args) {
			out = append(out, args[i+1])
		}
	}
	return out
}

// checkMakeTarget checks that the Makefile has a target (make -n prints
// what it would do and fails for an unknown target).
func checkMakeTarget(t *testing.T, target string) {
	t.Helper()
	cmd := exec.Command("make", "-n", target)
	cmd.Dir = repoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("README step `make %s`: %v\n%s", target, err, out)
	}
}

// checkTool checks a tool a step runs: a path in the repository must be
// one the Makefile installs (image-tools installs .tools/bin/crane).
func checkTool(t *testing.T, tool string) {
	t.Helper()
	if !strings.HasPrefix(tool, ".tools/bin/") {
		return
	}
	mk, err := os.ReadFile(filepath.Join(repoRoot(t), "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	name := filepath.Base(tool)
	if !strings.Contains(string(mk), "$(TOOLS)/"+name) && !strings.Contains(string(mk), "cmd/"+name+"@") {
		t.Errorf("README step runs %s, which no Makefile target installs", tool)
	}
}

// TestReadmeSteps checks the parsing of the steps, on the README as it is:
// the commands the deployment test follows are there, in order.
func TestReadmeSteps(t *testing.T) {
	steps := readmeSteps(t)
	var order []string
	for _, s := range steps {
		tool := s.args[0]
		if tool == "terraform" {
			sub := ""
			for _, a := range s.args[1:] {
				if !strings.HasPrefix(a, "-") {
					sub = a
					break
				}
			}
			tool += " " + sub
		}
		order = append(order, tool)
	}
	t.Logf("steps: %q", order)
	want := []string{"terraform init", "terraform apply", "terraform output"}
	i := 0
	for _, o := range order {
		if i < len(want) && o == want[i] {
			i++
		}
	}
	if i < len(want) {
		t.Errorf("the Deploying steps %q do not hold %q in that order", order, want)
	}
	if got := shellWords(`a 'b c' "d" e|f`); fmt.Sprint(got) != "[a b c d e]" {
		t.Errorf("shellWords: %q", got)
	}
	if got := stripComment(`x 'a # b' # c`); got != `x 'a # b' ` {
		t.Errorf("stripComment: %q", got)
	}
}

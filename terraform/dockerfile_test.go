package terraform

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd  string // upper case: FROM, RUN, COPY, ...
	args string
	line int
}

// stage is one FROM and what follows it.
type stage struct {
	image, name string
	body        []instruction
}

// parseDockerfile reads instructions and groups them in stages. No Docker
// engine runs on the machines that check pickup, so `make image` cannot be
// run there; this reads what it would build.
func parseDockerfile(t *testing.T, path string) (args map[string]string, stages []stage) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ins []instruction
	sc := bufio.NewScanner(f)
	var cur strings.Builder
	start, n := 0, 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if cur.Len() == 0 {
			start = n
		}
		if strings.HasSuffix(line, "\\") {
			cur.WriteString(strings.TrimSuffix(line, "\\") + " ")
			continue
		}
		cur.WriteString(line)
		cmd, rest, _ := strings.Cut(cur.String(), " ")
		ins = append(ins, instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(rest), line: start})
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	args = map[string]string{}
	for _, in := range ins {
		switch {
		case in.cmd == "FROM":
			fields := strings.Fields(in.args)
			s := stage{image: fields[0]}
			if len(fields) == 3 && strings.EqualFold(fields[1], "AS") {
				s.name = fields[2]
			}
			stages = append(stages, s)
		case len(stages) == 0 && in.cmd == "ARG":
			k, v, _ := strings.Cut(in.args, "=")
			args[k] = v
		case len(stages) > 0:
			stages[len(stages)-1].body = append(stages[len(stages)-1].body, in)
		}
	}
	return args, stages
}

// TestDockerfile checks the image `make image` builds: a multi-stage build
// whose Go stage matches go.mod and builds a static pickup, and whose final
// stage is distroless, non-root, and runs /pickup.
func TestDockerfile(t *testing.T) {
	root := repoRoot(t)
	args, stages := parseDockerfile(t, filepath.Join(root, "Dockerfile"))
	if len(stages) < 2 {
		t.Fatalf("Dockerfile has %d stages, want a build stage and a runtime stage", len(stages))
	}
	build, final := stages[0], stages[len(stages)-1]

	image := strings.ReplaceAll(build.image, "${GO_VERSION}", args["GO_VERSION"])
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goVersion := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
	if goVersion == nil || !strings.HasPrefix(image, "golang:"+string(goVersion[1])+".") {
		t.Errorf("build stage is %s, want golang:%s.x pinned to a release, as go.mod asks", image, goVersion[1])
	}
	var built bool
	for _, in := range build.body {
		if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
			built = true
			for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "./cmd/pickup", "-o /out/pickup"} {
				if !strings.Contains(in.args, want) {
					t.Errorf("line %d: go build lacks %s", in.line, want)
				}
			}
		}
	}
	if !built {
		t.Errorf("build stage runs no go build")
	}

	if final.image != "gcr.io/distroless/static-debian12:nonroot" {
		t.Errorf("runtime stage is %s, want gcr.io/distroless/static-debian12:nonroot", final.image)
	}
	var copied, user, entry bool
	for _, in := range final.body {
		switch in.cmd {
		case "COPY":
			copied = copied || in.args == "--from="+build.name+" /out/pickup /pickup"
		case "USER":
			user = in.args == "nonroot:nonroot" || in.args == "65532:65532"
			if !user {
				t.Errorf("line %d: USER %s, want nonroot", in.line, in.args)
			}
		case "ENTRYPOINT":
			entry = in.args == `["/pickup"]`
		case "RUN":
			t.Errorf("line %d: the distroless stage has no shell to RUN", in.line)
		}
	}
	if !copied {
		t.Errorf("runtime stage does not copy /out/pickup from the %q stage to /pickup", build.name)
	}
	if !user {
		t.Errorf("runtime stage does not run as nonroot")
	}
	if !entry {
		t.Errorf(`runtime stage's entry point is not ["/pickup"] (exec form)`)
	}

	ignore, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatalf("no .dockerignore: the build context would carry .git and .tools: %v", err)
	}
	lines := map[string]bool{}
	for _, l := range strings.Split(string(ignore), "\n") {
		lines[strings.TrimSpace(l)] = true
	}
	for _, want := range []string{".git", ".tools"} {
		if !lines[want] {
			t.Errorf(".dockerignore must leave out %s", want)
		}
	}
	for _, needed := range []string{"go.mod", "go.sum", "cmd", "*.go", "**/*.go"} {
		if lines[needed] {
			t.Errorf(".dockerignore leaves out %s, which the build needs", needed)
		}
	}
}

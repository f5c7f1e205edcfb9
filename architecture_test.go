// Package pickup_test holds the code to ARCHITECTURE.md: the import graph
// of every package against the rules listed there, and the one write path
// of pin streams.
package pickup_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/pickup-ipfs/pickup"

// listed is a package as `go list -json` tells it.
type listed struct {
	ImportPath string
	Dir        string
	GoFiles    []string
	Imports    []string
}

// packages lists the module's packages with their imports (not their
// tests'), by path relative to the module.
func packages(t *testing.T) map[string]listed {
	t.Helper()
	out, err := exec.Command("go", "list", "-json", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	pkgs := map[string]listed{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p listed
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		if rel == "" || strings.HasPrefix(rel, "terraform") {
			continue // the root holds only this test; terraform/ is the deployment's tooling
		}
		pkgs[rel] = p
	}
	return pkgs
}

// internalImports are p's imports of the module's packages, relative.
func internalImports(p listed) []string {
	var out []string
	for _, imp := range p.Imports {
		if rel, ok := strings.CutPrefix(imp, module+"/"); ok {
			out = append(out, rel)
		}
	}
	return out
}

func isTestSupport(pkg string) bool {
	return strings.HasSuffix(pkg[strings.LastIndex(pkg, "/")+1:], "test")
}

// stdIO are the standard library's packages that do I/O.
func isStdIO(imp string) bool {
	return slices.Contains([]string{"os", "os/exec", "net", "database/sql", "syscall"}, imp) || strings.HasPrefix(imp, "net/")
}

// matches reports whether pkg is what pattern names.
func matches(pattern, pkg string) bool {
	switch {
	case pattern == "*test":
		return isTestSupport(pkg)
	case strings.HasSuffix(pattern, "/..."):
		base := strings.TrimSuffix(pattern, "/...")
		return pkg == base || strings.HasPrefix(pkg, base+"/")
	}
	return pkg == pattern
}

func matchesAny(patterns []string, pkg string) bool {
	return slices.ContainsFunc(patterns, func(p string) bool { return matches(p, pkg) })
}

// rule is one line of ARCHITECTURE.md's rules block.
type rule struct {
	line     string
	subjects []string
	verb     string // "imports only", "never imports", "imported only by"
	objects  []string
}

// rules reads the rules block of ARCHITECTURE.md.
func rules(t *testing.T) []rule {
	t.Helper()
	f, err := os.Open("ARCHITECTURE.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []rule
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "```rules":
			in = true
			continue
		case in && line == "```":
			in = false
		}
		if !in || line == "" {
			continue
		}
		var r rule
		for _, verb := range []string{"imports only", "never imports", "imported only by"} {
			if before, after, ok := strings.Cut(line, " "+verb+" "); ok {
				r = rule{line: line, subjects: strings.Fields(before), verb: verb, objects: strings.Fields(after)}
				break
			}
		}
		if r.verb == "" || len(r.subjects) == 0 || len(r.objects) == 0 {
			t.Fatalf("ARCHITECTURE.md: a rule that does not read: %q", line)
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		t.Fatal("ARCHITECTURE.md has no rules block")
	}
	return out
}

func TestImportGraphFollowsTheArchitecture(t *testing.T) {
	pkgs := packages(t)
	for _, r := range rules(t) {
		matched := false
		for pkg, p := range pkgs {
			imports := internalImports(p)
			switch r.verb {
			case "imported only by":
				for _, subject := range r.subjects {
					if !matchesAny([]string{subject}, pkg) && slices.ContainsFunc(imports, func(imp string) bool { return matches(subject, imp) }) {
						if !matchesAny(r.objects, pkg) {
							t.Errorf("%s imports %s, against %q", pkg, subject, r.line)
						}
					}
					matched = matched || pkgs[subject].ImportPath != "" || subject == "*test"
				}
				continue
			}
			// Test support packages set scenes with anything.
			if !matchesAny(r.subjects, pkg) || (isTestSupport(pkg) && !slices.Contains(r.subjects, "*test")) {
				continue
			}
			matched = true
			if r.objects[0] == "std-io" {
				for _, imp := range p.Imports {
					if isStdIO(imp) {
						t.Errorf("%s imports %s, against %q", pkg, imp, r.line)
					}
				}
				continue
			}
			for _, imp := range imports {
				allowed := matchesAny(r.objects, imp)
				if r.verb == "imports only" && !allowed && !matches(pkg+"/...", imp) {
					t.Errorf("%s imports %s, against %q", pkg, imp, r.line)
				}
				if r.verb == "never imports" && allowed {
					t.Errorf("%s imports %s, against %q", pkg, imp, r.line)
				}
			}
		}
		if !matched {
			t.Errorf("rule %q names no package: stale", r.line)
		}
	}
}

// TestRulesCatchAForbiddenArrow: the checker itself fails on an arrow the
// rules forbid (a test that cannot fail proves nothing).
func TestRulesCatchAForbiddenArrow(t *testing.T) {
	for _, c := range []struct {
		pattern, pkg string
		want         bool
	}{
		{"fetcher/...", "fetcher", true},
		{"fetcher/...", "fetcher/dag/bitswap", true},
		{"fetcher/...", "fetchers", false},
		{"projections", "projections/views", false},
		{"*test", "internal/pintest", true},
		{"*test", "gateway/internal/gatewaytest", true},
		{"*test", "tests", false},
	} {
		if got := matches(c.pattern, c.pkg); got != c.want {
			t.Errorf("matches(%q, %q) = %v, want %v", c.pattern, c.pkg, got, c.want)
		}
	}
	if !isStdIO("net/http") || !isStdIO("os") || isStdIO("encoding/json") {
		t.Error("std-io misjudged")
	}
	for src, want := range map[string]bool{
		`log.Append(ctx, pin.Stream(id), e)`:         true,
		`log.Append(ctx, notify.Stream(id), e)`:      false,
		`log.Append(ctx, stream, e, pin.Stream(id))`: false,
	} {
		e, err := parser.ParseExpr(src)
		if err != nil {
			t.Fatal(err)
		}
		if got := namesPinStream(e.(*ast.CallExpr).Args[1]); got != want {
			t.Errorf("%s: names a pin stream %v, want %v", src, got, want)
		}
	}
}

// TestOnlyPinlogAppendsToPinStreams: outside pin/pinlog (and tests, and test
// support packages), no code appends to a stream named by pin.Stream.
func TestOnlyPinlogAppendsToPinStreams(t *testing.T) {
	pkgs := packages(t)
	fset := token.NewFileSet()
	checked := 0
	for pkg, p := range pkgs {
		if pkg == "pin/pinlog" || isTestSupport(pkg) {
			continue
		}
		for _, name := range p.GoFiles {
			path := filepath.Join(p.Dir, name)
			f, err := parser.ParseFile(fset, path, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			checked++
			ast.Inspect(f, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				if sel, ok := call.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "Append" && len(call.Args) >= 2 && namesPinStream(call.Args[1]) {
					t.Errorf("%s: appends to a pin stream; commit through pin/pinlog", fset.Position(call.Pos()))
				}
				return true
			})
		}
	}
	if checked < 50 {
		t.Fatalf("checked %d files: the walk found too little", checked)
	}
}

// namesPinStream reports whether e is pin.Stream(...).
func namesPinStream(e ast.Expr) bool {
	call, ok := e.(*ast.CallExpr)
	if !ok {
		return false
	}
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok {
		return false
	}
	x, ok := sel.X.(*ast.Ident)
	return ok && x.Name == "pin" && sel.Sel.Name == "Stream"
}

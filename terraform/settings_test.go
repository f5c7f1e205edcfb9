package terraform

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// pendingSettings are settings the deployment passes before pickup documents
// them, with what pickup must do about each. Remove a name once
// README.md has it.
var pendingSettings = map[string]string{}

// TestSettingsAreDocumented checks that every PICKUP_* setting the
// deployment passes is one pickup documents (README.md).
func TestSettingsAreDocumented(t *testing.T) {
	root := repoRoot(t)
	doc, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`PICKUP_[A-Z0-9_]+`)
	used := map[string][]string{}
	err = filepath.WalkDir(filepath.Join(root, "terraform"), func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || !strings.HasSuffix(p, ".tf") {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		for _, n := range re.FindAllString(string(b), -1) {
			used[n] = append(used[n], rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for n := range used {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		documented := strings.Contains(string(doc), "`"+n+"`")
		switch why, pending := pendingSettings[n]; {
		case documented && pending:
			t.Errorf("%s is documented now: remove it from pendingSettings", n)
		case pending:
			t.Logf("%s is not documented yet: %s", n, why)
		case !documented:
			t.Errorf("%s (in %s) is not a setting of README.md", n, strings.Join(used[n], ", "))
		}
	}
}

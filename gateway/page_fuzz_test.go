package gateway

import (
	"strings"
	"testing"
)

// A timeline's path names exactly one request id, in its canonical form;
// nothing else reaches the timeline.
func FuzzTimelinePath(f *testing.F) {
	for _, s := range []string{"/pins/3f1e2d4c-5b6a-4789-8abc-def012345678/timeline", "/pins//timeline", "/pins/timeline",
		"/pins/3F1E2D4C-5B6A-4789-8ABC-DEF012345678/timeline", "/pins/{3f1e2d4c-5b6a-4789-8abc-def012345678}/timeline",
		"/pins/a/b/timeline", "/pins/bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi/timeline"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		id, ok := timelinePath(path)
		if !ok {
			return
		}
		if !strings.EqualFold(path, "/pins/"+id.String()+timelineSuffix) {
			t.Fatalf("%q read as the timeline of %s", path, id)
		}
	})
}

package gateway_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/pickup-ipfs/pickup/api"
	"github.com/pickup-ipfs/pickup/gateway"
	"github.com/pickup-ipfs/pickup/gateway/internal/gatewaytest"
)

// TestPinningServiceCompliance runs the ecosystem's compliance checker
// (npm @ipfs-shipyard/pinning-service-compliance) against the gateway when
// PICKUP_PSA_COMPLIANCE names the directory it is installed in, patched to
// read the spec from a file (it fetches it from GitHub otherwise);
// gateway/testdata/compliance/run.sh does both. The same checks also run, always, as Go tests
// (TestComplianceChecks).
func TestPinningServiceCompliance(t *testing.T) {
	dir := os.Getenv("PICKUP_PSA_COMPLIANCE")
	if dir == "" {
		t.Skip("PICKUP_PSA_COMPLIANCE is not set; `make compliance` runs this")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("no node on PATH")
	}
	s := gatewaytest.New(t, gateway.Config{})
	srv := s.Server(t)
	token := s.Token(t, "compliance")
	pkg := filepath.Join(dir, "node_modules", "@ipfs-shipyard", "pinning-service-compliance")
	cmd := exec.Command(node, filepath.Join(pkg, "dist", "src", "index.js"), "-s", srv.URL, token)
	cmd.Dir = t.TempDir()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err = cmd.Run()
	t.Logf("compliance checker ran in %v:\n%s", time.Since(start).Round(time.Millisecond), out.String())
	if err != nil {
		t.Fatalf("compliance checker: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(pkg, "dist", "docs", "127.0.0.1.json"))
	if err != nil {
		t.Fatalf("compliance results: %v", err)
	}
	var res struct {
		Total, Passed, Failed int
		Success               bool
	}
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	t.Logf("compliance: %d of %d checks passed", res.Passed, res.Total)
	if !res.Success || res.Failed > 0 || res.Total == 0 {
		t.Fatalf("compliance failed: %s", b)
	}
}

// TestComplianceChecks is the compliance checker's nine checks (v1.8.1,
// dist/src/checks), as Go: the same requests and expectations, so they run
// in every `make test` without node.
func TestComplianceChecks(t *testing.T) {
	_, base, c := setup(t, gateway.Config{})
	all := "status=queued,pinning,pinned,failed"
	var before api.PinResults
	c.do(http.MethodGet, "/pins?"+all, "").want(t, http.StatusOK, &before)

	t.Run("checkEmptyBearerToken", func(t *testing.T) {
		client{t: t, base: base}.do(http.MethodGet, "/pins", "").wantError(t, http.StatusUnauthorized, "UNAUTHORIZED", "")
	})
	t.Run("checkInvalidBearerToken", func(t *testing.T) {
		bearer(t, base, "purposefully-invalid").do(http.MethodGet, "/pins", "").wantError(t, http.StatusUnauthorized, "UNAUTHORIZED", "")
	})
	t.Run("addPin", func(t *testing.T) {
		ps := c.addPin(`{"cid":"` + inlineCID(t) + `"}`)
		if !slices.Contains([]api.Status{api.StatusQueued, api.StatusPinning, api.StatusPinned}, ps.Status) || ps.Delegates == nil || ps.Created.IsZero() {
			t.Fatalf("PinStatus %+v does not match the schema's expectations", ps)
		}
	})
	t.Run("deleteNewPin", func(t *testing.T) {
		ps := c.addPin(`{"cid":"` + inlineCID(t) + `"}`)
		c.do(http.MethodDelete, "/pins/"+ps.RequestID, "").want(t, http.StatusAccepted, nil)
	})
	t.Run("getAllPins", func(t *testing.T) {
		c.do(http.MethodGet, "/pins?"+all, "").want(t, http.StatusOK, nil)
	})
	t.Run("replacePin", func(t *testing.T) {
		old := c.addPin(`{"cid":"` + inlineCID(t) + `"}`)
		newCID := inlineCID(t)
		var repl api.PinStatus
		c.do(http.MethodPost, "/pins/"+old.RequestID, `{"cid":"`+newCID+`"}`).want(t, http.StatusAccepted, &repl)
		if repl.Pin.CID != newCID || repl.RequestID == old.RequestID {
			t.Fatalf("replacement %+v", repl)
		}
		c.do(http.MethodGet, "/pins/"+old.RequestID, "").want(t, http.StatusNotFound, nil)
		c.do(http.MethodGet, "/pins/"+repl.RequestID, "").want(t, http.StatusOK, nil)
	})
	t.Run("matchPin", func(t *testing.T) {
		name := strings.ToLower(uuid.NewString())
		partial := name[len(name)/4 : len(name)-len(name)/4]
		c.addPin(`{"cid":"` + inlineCID(t) + `","name":"` + name + `"}`)
		for _, m := range []struct{ match, name string }{
			{"exact", name}, {"iexact", strings.ToUpper(name)}, {"partial", partial}, {"ipartial", strings.ToUpper(partial)},
		} {
			var list api.PinResults
			c.do(http.MethodGet, "/pins?match="+m.match+"&name="+m.name, "").want(t, http.StatusOK, &list)
			if list.Count != 1 || list.Results[0].Pin.Name != name {
				t.Fatalf("match %s of %q: %+v", m.match, m.name, list)
			}
		}
	})
	t.Run("testPagination", func(t *testing.T) {
		var first api.PinResults
		c.do(http.MethodGet, "/pins?"+all, "").want(t, http.StatusOK, &first)
		for n := first.Count; n < 15; n++ {
			c.addPin(`{"cid":"` + inlineCID(t) + `"}`)
		}
		c.do(http.MethodGet, "/pins?"+all, "").want(t, http.StatusOK, &first)
		if first.Count < 15 || len(first.Results) != 10 {
			t.Fatalf("first page: count %d, %d results; want at least 15 and the default 10", first.Count, len(first.Results))
		}
		// The checker's client pages with the oldest created time, which
		// JavaScript's Date keeps to the millisecond.
		oldest := first.Results[len(first.Results)-1].Created.Truncate(time.Millisecond)
		var second api.PinResults
		c.do(http.MethodGet, "/pins?"+all+"&before="+url.QueryEscape(oldest.Format(time.RFC3339Nano)), "").want(t, http.StatusOK, &second)
		seen := map[string]bool{}
		for _, r := range append(first.Results, second.Results...) {
			if seen[r.RequestID] {
				t.Fatalf("the second page repeats %s", r.RequestID)
			}
			seen[r.RequestID] = true
		}
	})
	t.Run("deleteAllPins", func(t *testing.T) {
		for {
			var list api.PinResults
			c.do(http.MethodGet, "/pins?"+all, "").want(t, http.StatusOK, &list)
			if list.Count == before.Count {
				return
			}
			for _, r := range list.Results {
				c.do(http.MethodDelete, "/pins/"+r.RequestID, "").want(t, http.StatusAccepted, nil)
			}
		}
	})
}

// inlineCID is what the checker pins: a raw sha2-256 CIDv1 of a fresh value.
func inlineCID(t testing.TB) string {
	t.Helper()
	h, err := mh.Sum([]byte(uuid.NewString()), mh.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return cid.NewCidV1(cid.Raw, h).String()
}

package main

import (
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/multiformats/go-multiaddr"

	"github.com/pickup-ipfs/pickup/fetcher/carstore"
	"github.com/pickup-ipfs/pickup/serve/ipni"
)

// TestAddIPNI: the IPNI flags from the environment reach the publisher;
// its actor runs in the process's group and its handler serves the chain
// (an empty one: 204 for the head) once it is read; PICKUP_IPNI=false
// adds nothing; an indexer that is not a URL is a usage error.
func TestAddIPNI(t *testing.T) {
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	gw := multiaddr.StringCast("/ip4/127.0.0.1/tcp/8080/http")
	open := func(t *testing.T, vars map[string]string) (*proc, *baseFlags, *ipniFlags) {
		t.Helper()
		dir := t.TempDir()
		vars["PICKUP_EVENTLOG"], vars["PICKUP_VIEWS"], vars["PICKUP_ADMIN_ADDR"] = filepath.Join(dir, "events.db"), filepath.Join(dir, "views.db"), ""
		e, _, _ := testEnv(vars)
		f := newFlags(e, "serve")
		b := addBaseFlags(f, "")
		fl := addIPNIFlags(f)
		if err := f.parse(nil); err != nil {
			t.Fatal(err)
		}
		p, err := b.open(context.Background(), e, "serve")
		if err != nil {
			t.Fatal(err)
		}
		return p, b, fl
	}
	cars, err := carstore.NewDir(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cars.Close() })

	p, b, fl := open(t, map[string]string{"PICKUP_IPNI_INDEXERS": "http://127.0.0.1:1/announce", "PICKUP_IPNI_CHUNK_SIZE": "8"})
	if *fl.chunkSize != 8 || len(*fl.indexers) != 1 {
		t.Fatalf("flags %d %v", *fl.chunkSize, *fl.indexers)
	}
	h, err := p.addIPNI(context.Background(), fl, cars, key, nil, gw)
	if err != nil || h == nil {
		t.Fatalf("addIPNI: %v, %v", h, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.serve(ctx, b) }()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, ipni.HandlerPath+"head", nil))
		if rec.Code == http.StatusNoContent {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("head: %d, want 204 once the chain is read", rec.Code)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}

	off, _, fl := open(t, map[string]string{"PICKUP_IPNI": "false"})
	defer off.close()
	if h, err := off.addIPNI(context.Background(), fl, cars, key, nil, gw); h != nil || err != nil {
		t.Fatalf("with PICKUP_IPNI=false: %v, %v; want nothing", h, err)
	}
	bad, _, fl := open(t, map[string]string{"PICKUP_IPNI_INDEXERS": "cid.contact"})
	defer bad.close()
	if _, err := bad.addIPNI(context.Background(), fl, cars, key, nil, gw); !errors.Is(err, errUsage) {
		t.Fatalf("an indexer that is not a URL: %v, want a usage error", err)
	}
}

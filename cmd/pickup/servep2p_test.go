package main

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	servebitswap "github.com/pickup-ipfs/pickup/serve/bitswap"
)

// TestServeKey: the serving peer's key from --serve-libp2p-key, else the
// key file, made once (0600) and read back the same; a file that does not
// decode is an error and is left as it is; a key that does not decode is
// a usage error. pickup serve-key prints a key that decodes, its peer ID
// on stderr.
func TestServeKey(t *testing.T) {
	dir := t.TempDir()
	flagsWith := func(vars map[string]string) *serveP2PFlags {
		e, _, _ := testEnv(vars)
		f := newFlags(e, "test")
		sf := addServeP2PFlags(f)
		if err := f.parse(nil); err != nil {
			t.Fatal(err)
		}
		return sf
	}
	logger := slog.New(slog.DiscardHandler)
	log := filepath.Join(dir, "events.db")
	first, err := flagsWith(nil).privateKey(log, logger)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, serveKeyFileName)
	st, err := os.Stat(file)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file beside the log: %v, %v", st, err)
	}
	again, err := flagsWith(nil).privateKey(log, logger)
	if err != nil || !again.Equals(first) {
		t.Fatalf("the key file read again: %v, %v", again, err)
	}

	_, text, _ := servebitswap.NewKey()
	fromEnv, err := flagsWith(map[string]string{"PICKUP_SERVE_LIBP2P_KEY": text}).privateKey(log, logger)
	if want, _ := servebitswap.DecodeKey(text); err != nil || !fromEnv.Equals(want) {
		t.Fatalf("PICKUP_SERVE_LIBP2P_KEY: %v, %v", fromEnv, err)
	}
	if _, err := flagsWith(map[string]string{"PICKUP_SERVE_LIBP2P_KEY": "nonsense"}).privateKey(log, logger); !errors.Is(err, errUsage) {
		t.Errorf("a key that does not decode: %v, want a usage error", err)
	}

	bad := filepath.Join(dir, "bad.key")
	os.WriteFile(bad, []byte("garbage\n"), 0o600)
	_, err = flagsWith(map[string]string{"PICKUP_SERVE_LIBP2P_KEY_FILE": bad}).privateKey(log, logger)
	if err == nil || !strings.Contains(err.Error(), bad) || !errors.Is(err, servebitswap.ErrBadKey) {
		t.Errorf("a corrupt key file: %v, want ErrBadKey naming the file", err)
	}
	if b, _ := os.ReadFile(bad); string(b) != "garbage\n" {
		t.Errorf("the corrupt key file became %q", b)
	}

	// A deployment's serving role (its log on a server) makes no key of its
	// own: each task would be another peer. Given one, it serves with it.
	for _, server := range []string{"postgres://db/pickup", "esdb://localhost:2113"} {
		if key, err := flagsWith(nil).privateKey(server, logger); !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "PICKUP_SERVE_LIBP2P_KEY") {
			t.Errorf("no key with the log at %s: %v, %v; want a usage error naming PICKUP_SERVE_LIBP2P_KEY", server, key, err)
		}
		if key, err := flagsWith(map[string]string{"PICKUP_SERVE_LIBP2P_KEY": text}).privateKey(server, logger); err != nil || !key.Equals(fromEnv) {
			t.Errorf("the key given with the log at %s: %v, %v", server, key, err)
		}
	}
	if _, err := os.Stat(filepath.Join("data", serveKeyFileName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a key file was made in data/: %v", err)
	}

	for log, want := range map[string]string{
		"data/events.db":          "data/serve-libp2p.key",
		"/var/lib/pickup/log.db":  "/var/lib/pickup/serve-libp2p.key",
		"file:/srv/pickup/log.db": "/srv/pickup/serve-libp2p.key",
	} {
		if got := defaultServeKeyFile(log); got != filepath.FromSlash(want) {
			t.Errorf("key file for the log %s: %s, want %s", log, got, want)
		}
	}

	var out, errs bytes.Buffer
	if err := runServeKey(t.Context(), &env{stdout: &out, stderr: &errs, getenv: func(string) string { return "" }}, nil); err != nil {
		t.Fatal(err)
	}
	key, err := servebitswap.DecodeKey(out.String())
	if err != nil {
		t.Fatalf("serve-key printed %q: %v", out.String(), err)
	}
	id, _ := peer.IDFromPrivateKey(key)
	if !strings.Contains(errs.String(), id.String()) {
		t.Errorf("serve-key's stderr %q does not name the peer %s", errs.String(), id)
	}
}

// TestGatewayURL: the gateway's public URL, or where it listens.
func TestGatewayURL(t *testing.T) {
	for _, tc := range []struct{ public, listening, want string }{
		{"", "127.0.0.1:8080", "http://127.0.0.1:8080"},
		{"", "0.0.0.0:8080", "http://127.0.0.1:8080"},
		{"", "[::]:8080", "http://127.0.0.1:8080"},
		{"https://serve.example.com/", "0.0.0.0:8080", "https://serve.example.com"},
	} {
		sf := &serveP2PFlags{publicURL: &tc.public}
		if got := sf.gatewayURL(tc.listening); got != tc.want {
			t.Errorf("public %q, listening %s: %s, want %s", tc.public, tc.listening, got, tc.want)
		}
	}
}

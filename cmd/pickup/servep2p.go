package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	servebitswap "github.com/pickup-ipfs/pickup/serve/bitswap"
)

// serveP2PFlags are the serving role's libp2p peer: where it listens,
// what it announces, its identity, and the public URL of its gateway.
type serveP2PFlags struct {
	listen, announce *[]string
	key, keyFile     *string
	publicURL        *string
	maxPeers         *int
}

// serveKeyFileName is the key file's name beside the embedded event log.
const serveKeyFileName = "serve-libp2p.key"

func addServeP2PFlags(f *flags) *serveP2PFlags {
	return &serveP2PFlags{
		listen:    f.list("serve-libp2p-listen", servebitswap.DefaultListenAddrs(), "where the serving role's libp2p host (bitswap) listens, comma separated; a deployment: /ip4/0.0.0.0/tcp/4002,/ip4/0.0.0.0/udp/4002/quic-v1", "PICKUP_SERVE_LIBP2P_LISTEN"),
		announce:  f.list("serve-libp2p-announce", nil, "multiaddrs announced (to peers, delegated routing, IPNI) instead of the listen addresses, comma separated, e.g. /dns4/NAME/tcp/4002,/dns4/NAME/udp/4002/quic-v1", "PICKUP_SERVE_LIBP2P_ANNOUNCE"),
		key:       f.string("serve-libp2p-key", "", "the serving peer's libp2p private key, base64 of the protobuf-marshalled key (as kubo's Identity.PrivKey; pickup serve-key makes one); wins over --serve-libp2p-key-file", "PICKUP_SERVE_LIBP2P_KEY"),
		keyFile:   f.string("serve-libp2p-key-file", "", "file holding the serving peer's key (as --serve-libp2p-key); created once (mode 0600) when absent, never replaced; a file that does not decode is an error (default: "+serveKeyFileName+" beside the embedded event log; with an event log on a server, none: the key must be given)", "PICKUP_SERVE_LIBP2P_KEY_FILE"),
		publicURL: f.string("serve-public-url", "", "the trustless gateway's public base URL, as delegated routing and IPNI announce it, e.g. https://serve.example.com (default: http:// and where --serve-addr listens)", "PICKUP_SERVE_PUBLIC_URL"),
		maxPeers:  f.integer("serve-libp2p-max-peers", servebitswap.DefaultMaxPeers, "connections the libp2p host keeps; beyond, the least useful are closed down to three quarters", "PICKUP_SERVE_LIBP2P_MAX_PEERS"),
	}
}

// privateKey returns the serving peer's identity: --serve-libp2p-key, or
// the key file's, which is created when absent. A key that does not decode
// is an error, never a reason to make a new one: the peer ID is what
// routers and indexers know pickup by.
func (sf *serveP2PFlags) privateKey(eventLog string, logger *slog.Logger) (crypto.PrivKey, error) {
	if *sf.key != "" {
		key, err := servebitswap.DecodeKey(*sf.key)
		if err != nil {
			return nil, fmt.Errorf("%w: --serve-libp2p-key (PICKUP_SERVE_LIBP2P_KEY): %v", errUsage, err)
		}
		return key, nil
	}
	path := *sf.keyFile
	if path == "" && isServerLog(eventLog) {
		// A deployment (its log on a server) serves with one key in all
		// its tasks: a task that made its own would be another peer, with
		// the deployment's announcements naming the other one.
		return nil, fmt.Errorf("%w: the serving role of a deployment (an event log on a server) is given its key: set --serve-libp2p-key (PICKUP_SERVE_LIBP2P_KEY; `pickup serve-key` makes one) or name a key file (PICKUP_SERVE_LIBP2P_KEY_FILE)", errUsage)
	}
	if path == "" {
		path = defaultServeKeyFile(eventLog)
	}
	text, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		var created bool
		if text, created, err = createServeKeyFile(path); created {
			// Loud: a deployment whose tasks each made their own key would
			// be as many peers as tasks (PICKUP_SERVE_LIBP2P_KEY is the one
			// key of them all).
			logger.Warn("made a new libp2p key for the serving peer, kept in its key file: every process serving one deployment must have the same key (PICKUP_SERVE_LIBP2P_KEY, or this file)", "component", "bitswap-server", "file", path)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("serving peer's key file: %w", err)
	}
	key, err := servebitswap.DecodeKey(string(text))
	if err != nil {
		return nil, fmt.Errorf("serving peer's key file %s (left as it is; fix or remove it): %w", path, err)
	}
	return key, nil
}

// defaultServeKeyFile is the key file beside the embedded event log.
func defaultServeKeyFile(eventLog string) string {
	if eventLog == "" {
		return filepath.Join("data", serveKeyFileName)
	}
	return filepath.Join(filepath.Dir(strings.TrimPrefix(eventLog, "file:")), serveKeyFileName)
}

// isServerLog reports an event log on a server (PostgreSQL, EventStoreDB):
// a deployment's, not the embedded file.
func isServerLog(eventLog string) bool { return strings.Contains(eventLog, "://") }

// createServeKeyFile writes a new key at path (writeOnce).
func createServeKeyFile(path string) ([]byte, bool, error) {
	_, text, err := servebitswap.NewKey()
	if err != nil {
		return nil, false, err
	}
	return writeOnce(path, []byte(text+"\n"))
}

// writeOnce writes data to a new file at path (mode 0600, synced), and
// returns it; a file that appeared meanwhile (another process made it) is
// not replaced, and its content is returned instead, created false. The
// libp2p seed and the serving peer's key are made this way.
func writeOnce(path string, data []byte) ([]byte, bool, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		b, err := os.ReadFile(path)
		return b, false, err
	}
	if err != nil {
		return nil, false, err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return nil, false, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, false, err
	}
	return data, true, f.Close()
}

// gatewayURL is the gateway's public base URL: --serve-public-url, or
// http:// and where it listens (an unspecified address as loopback).
func (sf *serveP2PFlags) gatewayURL(listening string) string {
	if *sf.publicURL != "" {
		return strings.TrimRight(*sf.publicURL, "/")
	}
	host, port, err := net.SplitHostPort(listening)
	if err != nil {
		return "http://" + listening
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// runServeKey prints a new libp2p key for the serving role: the value of
// PICKUP_SERVE_LIBP2P_KEY (on AWS, the Secrets Manager secret ECS injects
// into it). Its peer ID goes to stderr.
func runServeKey(_ context.Context, e *env, args []string) error {
	f := newFlags(e, "serve-key")
	if err := f.parse(args); err != nil {
		return err
	}
	if f.NArg() > 0 {
		return fmt.Errorf("%w: serve-key takes no arguments", errUsage)
	}
	key, text, err := servebitswap.NewKey()
	if err != nil {
		return err
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, text)
	fmt.Fprintf(e.stderr, "peer ID: %s\n", id)
	return nil
}

package bitswap

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
)

// ErrBadKey: a configured private key that does not decode. It is never
// replaced by a new one: the peer ID is what others know the server by.
var ErrBadKey = errors.New("not a libp2p private key")

// NewKey makes a new ed25519 identity and returns it with its text
// (EncodeKey): what `pickup serve-key` prints for an operator to keep.
func NewKey() (crypto.PrivKey, string, error) {
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, "", fmt.Errorf("generate libp2p key: %w", err)
	}
	text, err := EncodeKey(key)
	return key, text, err
}

// EncodeKey returns the key as kubo keeps its Identity.PrivKey: the
// standard base64 of the protobuf-marshalled private key.
func EncodeKey(key crypto.PrivKey) (string, error) {
	raw, err := crypto.MarshalPrivateKey(key)
	if err != nil {
		return "", fmt.Errorf("marshal libp2p key: %w", err)
	}
	return base64.StdEncoding.EncodeToString(raw), nil
}

// DecodeKey reads EncodeKey's text (surrounding space ignored): kubo's
// Identity.PrivKey is read as well.
func DecodeKey(text string) (crypto.PrivKey, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(text))
	if err != nil {
		return nil, fmt.Errorf("%w: not base64: %v", ErrBadKey, err)
	}
	key, err := crypto.UnmarshalPrivateKey(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	return key, nil
}

// Provider is the serving role as others announce it: its identity, the
// libp2p addresses it is reached at (announced, without /p2p/), and its
// HTTP trustless gateway's address (/dns4/host/tcp/443/https,
// /ip4/127.0.0.1/tcp/8080/http). Delegated routing answers it; IPNI
// advertisements are signed with Key and carry its addresses.
type Provider struct {
	Key     crypto.PrivKey
	Addrs   []multiaddr.Multiaddr
	Gateway multiaddr.Multiaddr
}

// ID is the provider's peer ID (of Key).
func (p Provider) ID() (peer.ID, error) { return peer.IDFromPrivateKey(p.Key) }

// AllAddrs are the libp2p addresses and, last, the gateway's (when set).
func (p Provider) AllAddrs() []multiaddr.Multiaddr {
	out := append([]multiaddr.Multiaddr(nil), p.Addrs...)
	if p.Gateway != nil {
		out = append(out, p.Gateway)
	}
	return out
}

// GatewayAddr is the multiaddr of an HTTP gateway's base URL, as IPNI and
// delegated routing name HTTP providers: https://serve.example.com is
// /dns/serve.example.com/tcp/443/https; http://127.0.0.1:8080 is
// /ip4/127.0.0.1/tcp/8080/http. A path is refused (the gateway is at the
// root of its host).
func GatewayAddr(base string) (multiaddr.Multiaddr, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("%w: gateway URL %q: %v", ErrInvalid, base, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return nil, fmt.Errorf("%w: gateway URL %q: want http:// or https:// and a host", ErrInvalid, base)
	}
	if strings.Trim(u.Path, "/") != "" || u.RawQuery != "" || u.User != nil {
		return nil, fmt.Errorf("%w: gateway URL %q: want a host alone, no path, query or user", ErrInvalid, base)
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	host := "/dns/" + u.Hostname()
	if ip := net.ParseIP(u.Hostname()); ip != nil {
		host = "/ip6/" + ip.String()
		if ip.To4() != nil {
			host = "/ip4/" + ip.String()
		}
	}
	m, err := multiaddr.NewMultiaddr(host + "/tcp/" + port + "/" + u.Scheme)
	if err != nil {
		return nil, fmt.Errorf("%w: gateway URL %q: %v", ErrInvalid, base, err)
	}
	return m, nil
}

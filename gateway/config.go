package gateway

import (
	"fmt"
	"time"

	ma "github.com/multiformats/go-multiaddr"
)

// Consistency says how a read makes sure it sees the writes that came before
// it.
type Consistency string

const (
	// ConsistencyLog makes every read wait until the views reach the log's
	// head as it was when the read began. It is right wherever several
	// gateway processes share one log (AWS Lambda, several servers): a
	// client's write may have gone through another instance, which this one
	// cannot know of.
	ConsistencyLog Consistency = "log"
	// ConsistencyProcess makes a read wait only for the tenant's latest
	// append made through this process. It is right when one gateway process
	// takes every write (the embedded default), and it spares reads the wait
	// for events they do not care about (fetchers' progress).
	ConsistencyProcess Consistency = "process"
)

// Config is what the gateway is told. The zero value of each field means its
// default.
type Config struct {
	// Delegates, when set, are the multiaddrs returned as every pin's
	// delegates, each ending in /p2p/<peer id>, 1 to 20: a static list
	// (private fetchers behind a load balancer). Empty, the live fetchers'
	// announced addresses are answered (Deps.Delegates). With neither, the
	// Pinning Service API's routes answer 503 NO_DELEGATES with
	// Retry-After and change nothing: its PinStatus names 1 to 20
	// delegates, and an address nobody listens at would be a lie.
	Delegates []string
	// AllowPrivateOrigins keeps origins on private, loopback, link-local and
	// unspecified addresses instead of dropping them. Only for tests and
	// closed networks: with it, a request can make the fetchers dial into
	// their own network.
	AllowPrivateOrigins bool
	// Consistency is how reads see earlier writes. Default ConsistencyLog.
	Consistency Consistency
	// ReadWait bounds how long a read waits for the views to catch up before
	// it answers with what they have. Default 2s.
	ReadWait time.Duration
	// TokenCacheTTL is how long a token's tenant is remembered, sparing the
	// token view a lookup per request; a revoked token keeps working for up to
	// this long. Default 10s; negative disables the cache.
	TokenCacheTTL time.Duration
	// MaxBodyBytes bounds a request body. Default 64 KiB.
	MaxBodyBytes int64
	// Realm names the service in WWW-Authenticate challenges. Default
	// "pickup".
	Realm string
	// UploadIdleTimeout is how long a CAR upload's body may send nothing
	// before it is refused (408): a slow sender holds a connection and a
	// file open, so it must keep its bytes coming. Default 30s.
	UploadIdleTimeout time.Duration
}

// Defaults for Config's fields.
const (
	DefaultReadWait      = 2 * time.Second
	DefaultTokenCacheTTL = 10 * time.Second
	DefaultMaxBodyBytes  = 64 << 10
	DefaultRealm         = "pickup"
	// DefaultUploadIdleTimeout is UploadIdleTimeout's default.
	DefaultUploadIdleTimeout = 30 * time.Second
	// MaxDelegates is the most delegates the API may return.
	MaxDelegates = 20
)

// withDefaults returns c with every unset field at its default.
func (c Config) withDefaults() Config {
	if c.Consistency == "" {
		c.Consistency = ConsistencyLog
	}
	if c.ReadWait == 0 {
		c.ReadWait = DefaultReadWait
	}
	if c.TokenCacheTTL == 0 {
		c.TokenCacheTTL = DefaultTokenCacheTTL
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.Realm == "" {
		c.Realm = DefaultRealm
	}
	if c.UploadIdleTimeout == 0 {
		c.UploadIdleTimeout = DefaultUploadIdleTimeout
	}
	return c
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	c = c.withDefaults()
	if len(c.Delegates) > MaxDelegates {
		return fmt.Errorf("gateway config: %d delegates, at most %d", len(c.Delegates), MaxDelegates)
	}
	seen := make(map[string]bool, len(c.Delegates))
	for i, d := range c.Delegates {
		m, err := ma.NewMultiaddr(d)
		if err != nil {
			return fmt.Errorf("gateway config: delegate %d %q: %w", i, d, err)
		}
		if _, err := peerOf(m); err != nil {
			return fmt.Errorf("gateway config: delegate %d %q: %w", i, d, err)
		}
		if seen[m.String()] {
			return fmt.Errorf("gateway config: delegate %q listed twice", d)
		}
		seen[m.String()] = true
	}
	switch {
	case c.Consistency != ConsistencyLog && c.Consistency != ConsistencyProcess:
		return fmt.Errorf("gateway config: consistency %q, want %q or %q", c.Consistency, ConsistencyLog, ConsistencyProcess)
	case c.ReadWait < 0:
		return fmt.Errorf("gateway config: negative read wait %v", c.ReadWait)
	case c.MaxBodyBytes < 1<<10:
		return fmt.Errorf("gateway config: max body %d bytes, want at least 1 KiB", c.MaxBodyBytes)
	case c.UploadIdleTimeout < 0:
		return fmt.Errorf("gateway config: negative upload idle timeout %s", c.UploadIdleTimeout)
	}
	return nil
}

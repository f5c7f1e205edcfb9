package presence

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/pickup-ipfs/pickup/eventlog"
)

// DefaultCacheTTL is how long a Directory keeps the delegates it read: a
// fetcher that starts is named within this long, one that stops (and
// withdraws) is dropped within this long, and a silent one once its
// announcement expires, within this long more.
const DefaultCacheTTL = 15 * time.Second

// emptyCacheTTL is how long a Directory keeps an answer of no fetcher at
// all, when that is shorter than CacheTTL: the API refuses pins meanwhile,
// so the first fetcher to start is named within a second.
const emptyCacheTTL = time.Second

// Reader is what reading the slots needs of the log. eventlog.Store is one.
type Reader interface {
	ReadStream(ctx context.Context, stream string, from uint64, dir eventlog.Direction, limit int) ([]eventlog.Event, error)
}

// DirectoryConfig configures a Directory. Zero fields take their defaults.
type DirectoryConfig struct {
	// CacheTTL is how long the addresses read are answered again without
	// reading. Default DefaultCacheTTL; negative reads every time.
	CacheTTL time.Duration
	// Max is the most addresses answered. Default Slots.
	Max int
}

// Directory answers the live fetchers' addresses, read from the slots'
// streams and kept for CacheTTL. It is safe for concurrent use: one read
// at a time, the callers meanwhile wait for it.
type Directory struct {
	log    Reader
	cfg    DirectoryConfig
	now    func() time.Time
	logger *slog.Logger

	mu     sync.Mutex
	cached []string
	readAt time.Time
	read   bool
}

// NewDirectory returns a Directory reading log. A nil now means time.Now;
// a nil logger discards.
func NewDirectory(cfg DirectoryConfig, log Reader, now func() time.Time, logger *slog.Logger) *Directory {
	if cfg.CacheTTL == 0 {
		cfg.CacheTTL = DefaultCacheTTL
	}
	if cfg.Max <= 0 {
		cfg.Max = Slots
	}
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Directory{log: log, cfg: cfg, now: now, logger: logger.With("component", "presence")}
}

// Delegates returns the live fetchers' addresses (see Delegates), in slot
// order, at most Max; none when no fetcher is live. A failed read is
// returned as an error, and read again by the next call.
func (d *Directory) Delegates(ctx context.Context) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	ttl := d.cfg.CacheTTL
	if len(d.cached) == 0 {
		ttl = min(ttl, emptyCacheTTL)
	}
	if d.read && ttl > 0 && now.Sub(d.readAt) < ttl {
		return d.cached, nil
	}
	slots, err := Read(ctx, d.log)
	if err != nil {
		return nil, err
	}
	for _, s := range slots {
		if s.Err != nil {
			d.logger.WarnContext(ctx, "a slot's last event does not decode; its fetcher is not named", "slot", s.Number, "err", s.Err)
		}
	}
	d.cached, d.readAt, d.read = Delegates(slots, now, d.cfg.Max), now, true
	return d.cached, nil
}

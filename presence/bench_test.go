package presence_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/pickup-ipfs/pickup/presence"
)

// BenchmarkRead is what a gateway pays per CacheTTL for the live set: the
// last event of every slot, read in parallel, on the embedded log with 20
// live fetchers.
func BenchmarkRead(b *testing.B) {
	log := openLog(b, filepath.Join(b.TempDir(), "events.db"))
	id := "12D3KooWLYddiuv1m7YvJzDiMuht5eLRXe2wZ52si7Hz7XpdhchL"
	for range presence.Slots {
		if _, err := presence.Acquire(context.Background(), presence.Config{}, presence.Deps{Log: log},
			func(context.Context, int) (presence.Endpoint, func(), error) {
				return presence.Endpoint{PeerID: id, Addrs: []string{"/ip4/127.0.0.1/tcp/4001/p2p/" + id}}, func() {}, nil
			}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		slots, err := presence.Read(context.Background(), log)
		if err != nil || len(slots) != presence.Slots {
			b.Fatal(err)
		}
	}
}

package embedded_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/eventlog/embedded"
	"github.com/pickup-ipfs/pickup/eventlog/eventlogtest"
)

var backend = eventlogtest.Backend{
	Open: func(ctx context.Context, location string) (eventlog.Store, error) {
		return embedded.Open(ctx, location, embedded.Options{})
	},
	NewLocation: func(t testing.TB) string { return filepath.Join(t.TempDir(), "events.db") },
}

func TestMain(m *testing.M) { eventlogtest.Main(m, backend) }

func TestConformance(t *testing.T) { eventlogtest.Run(t, backend) }

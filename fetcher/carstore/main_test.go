package carstore_test

import (
	"testing"

	"github.com/pickup-ipfs/pickup/fetcher/carstore/carstoretest"
)

// TestMain runs the tests, or the writer process that the conformance
// suite's kill cases start, on either store.
func TestMain(m *testing.M) { carstoretest.Main(m, dirBackend, s3Backend) }

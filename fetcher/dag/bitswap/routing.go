package bitswap

import (
	"fmt"
	"net/http"

	"github.com/ipfs/boxo/routing/http/client"
	"github.com/ipfs/boxo/routing/http/contentrouter"
	"github.com/libp2p/go-libp2p/core/routing"
)

// DelegatedRouting returns a provider finder that asks a Delegated Routing
// V1 HTTP endpoint (such as https://delegated-ipfs.dev, or cid.contact's)
// for the peers that provide a CID over bitswap. Give it to Config.Routing:
// a fetch then reaches providers the pin request did not name. httpClient
// may be nil.
func DelegatedRouting(url string, httpClient *http.Client) (routing.ContentDiscovery, error) {
	var opts []client.Option
	if httpClient != nil {
		opts = append(opts, client.WithHTTPClient(httpClient))
	}
	c, err := client.New(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("delegated routing %q: %w", url, err)
	}
	return contentrouter.NewContentRoutingClient(c), nil
}

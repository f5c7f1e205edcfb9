package bitswap

import (
	"fmt"
	"net/http"

	"github.com/ipfs/boxo/routing/http/client"
	"github.com/ipfs/boxo/routing/http/contentrouter"
	"github.com/libp2p/go-libp2p/core/routing"

	"github.com/pickup-ipfs/pickup/internal/publicnet/publichttp"
)

// DelegatedRouting returns a provider finder that asks a Delegated Routing
// V1 HTTP endpoint (such as https://delegated-ipfs.dev, or cid.contact's)
// for the peers that provide a CID over bitswap. Give it to Config.Routing:
// a fetch then reaches providers the pin request did not name. httpClient
// may be nil: the endpoint is then asked through publichttp's client, which
// reaches the endpoint's own host wherever it is and follows its redirects
// only to public addresses.
func DelegatedRouting(url string, httpClient *http.Client) (routing.ContentDiscovery, error) {
	if httpClient == nil {
		httpClient = publichttp.New(publichttp.Config{Trusted: url})
	}
	c, err := client.New(url, client.WithHTTPClient(httpClient))
	if err != nil {
		return nil, fmt.Errorf("delegated routing %q: %w", url, err)
	}
	return contentrouter.NewContentRoutingClient(c), nil
}

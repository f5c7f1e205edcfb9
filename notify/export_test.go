package notify

import (
	"github.com/pickup-ipfs/pickup/internal/publicnet"
	"github.com/pickup-ipfs/pickup/internal/publicnet/publichttp"
)

// DialControl is the webhook client's check of each address it dials
// (with private webhooks off): publichttp's, for the policy.
var DialControl = publichttp.Control(publicnet.Policy{})

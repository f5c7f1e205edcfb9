package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// runHealth asks a running pickup process whether it is ready (/readyz:
// its stores and subscriptions answer), or with --live only whether it
// serves (/healthz), for container health checks (distroless images have no
// curl). A container orchestrator that replaces unhealthy tasks should ask
// --live: a process waiting out a dependency's outage is not ready, yet
// replacing it would only cut its work short.
func runHealth(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "health")
	addr := f.string("admin-addr", "127.0.0.1:9464", "the admin server to ask", "PICKUP_ADMIN_ADDR")
	live := f.boolean("live", false, "ask /healthz (the process serves) instead of /readyz (it is ready)")
	f.Usage = func() {
		fmt.Fprintln(f.Output(), "pickup health [--live] [ADDR]: exit 0 when the process's /readyz answers ready (with --live: its /healthz answers), 1 otherwise")
		f.PrintDefaults()
	}
	if err := f.parse(args); err != nil {
		return err
	}
	switch f.NArg() {
	case 0:
	case 1:
		*addr = f.Arg(0)
	default:
		return fmt.Errorf("%w: health takes at most one address", errUsage)
	}
	target := *addr
	if strings.HasPrefix(target, ":") {
		target = "127.0.0.1" + target
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	path := "/readyz"
	if *live {
		path = "/healthz"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+target+path, nil)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		if *live {
			return fmt.Errorf("not serving: %s %s", resp.Status, strings.TrimSpace(string(body)))
		}
		return fmt.Errorf("not ready: %s", strings.TrimSpace(string(body)))
	}
	fmt.Fprintln(e.stdout, strings.TrimSpace(string(body)))
	return nil
}

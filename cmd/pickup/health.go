package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// runHealth asks a running pickup process whether it is ready, for
// container health checks (distroless images have no curl).
func runHealth(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "health")
	addr := f.string("admin-addr", "127.0.0.1:9464", "the admin server to ask", "PICKUP_ADMIN_ADDR")
	f.Usage = func() {
		fmt.Fprintln(f.Output(), "pickup health [ADDR]: exit 0 when the process's /readyz answers ready, 1 otherwise")
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
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+target+"/readyz", nil)
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
		return fmt.Errorf("not ready: %s", strings.TrimSpace(string(body)))
	}
	fmt.Fprintln(e.stdout, strings.TrimSpace(string(body)))
	return nil
}

package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pickup-ipfs/pickup/notify"
	"github.com/pickup-ipfs/pickup/notify/sns"
)

// notifyFlags are the notifier's settings, read by the projector (and
// `pickup run`).
type notifyFlags struct {
	key                 *string
	allowPrivate        *bool
	topicARN, bucket    *string
	maxAttempts         *int
	baseDelay, maxDelay *time.Duration
	timeout             *time.Duration
}

func webhookKeyFlag(f *flags) *string {
	return f.string("webhook-key", "", "key webhook secrets are derived from: 64 hex digits, or any string of at least 32 bytes (its SHA-256 is the key) (default: the file webhook.key beside an embedded event log, made by `pickup webhooks add`)", "PICKUP_WEBHOOK_KEY")
}

func allowPrivateWebhooksFlag(f *flags) *bool {
	return f.boolean("allow-private-webhooks", false, "let webhooks reach loopback, private and link-local addresses, and http:// to loopback (tests, one machine)", "PICKUP_ALLOW_PRIVATE_WEBHOOKS")
}

func addNotifyFlags(f *flags) *notifyFlags {
	p := notify.DefaultPolicy()
	return &notifyFlags{
		key:          webhookKeyFlag(f),
		allowPrivate: allowPrivateWebhooksFlag(f),
		topicARN:     f.string("notify-topic-arn", "", "SNS topic told of every CAR validated into the carpark (empty: none)", "PICKUP_NOTIFY_TOPIC_ARN"),
		bucket:       f.string("notify-bucket", "", "carpark bucket named in the SNS messages", "PICKUP_NOTIFY_BUCKET", "PICKUP_CARPARK_BUCKET"),
		maxAttempts:  f.integer("notify-max-attempts", p.MaxAttempts, "attempts at a webhook or SNS delivery before it is abandoned", "PICKUP_NOTIFY_MAX_ATTEMPTS"),
		baseDelay:    f.duration("notify-base-delay", p.BaseDelay, "wait after a delivery's first failed attempt, doubled each time", []string{"PICKUP_NOTIFY_BASE_DELAY"}),
		maxDelay:     f.duration("notify-max-delay", p.MaxDelay, "longest wait between a delivery's attempts", []string{"PICKUP_NOTIFY_MAX_DELAY"}),
		timeout:      f.duration("notify-timeout", 10*time.Second, "longest attempt at a delivery", []string{"PICKUP_NOTIFY_TIMEOUT"}),
	}
}

// addNotifier adds the notifier, which delivers the tenants' webhooks and
// the SNS messages through the log. logAt is the event log's location
// (--eventlog): an embedded log keeps the webhook key file beside it.
func (p *proc) addNotifier(ctx context.Context, nf *notifyFlags, logAt string) error {
	policy := notify.Policy{MaxAttempts: *nf.maxAttempts, BaseDelay: *nf.baseDelay, MaxDelay: *nf.maxDelay}
	if err := policy.Validate(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	key, err := webhookKey(*nf.key, logAt, false)
	if err != nil {
		return err
	}
	deps := notify.Deps{
		Log:      p.logAs("notifier"),
		Webhooks: notify.NewWebhookClient(notify.WebhookClientConfig{AllowPrivate: *nf.allowPrivate}),
		Key:      key,
		Attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pickup_notify_attempts_total",
			Help: "Attempts at webhook and SNS deliveries, by target kind and outcome (delivered, failed, abandoned).",
		}, []string{"kind", "outcome"}),
	}
	if err := p.reg.Register(deps.Attempts); err != nil {
		return err
	}
	if *nf.topicARN != "" {
		pub, err := sns.New(ctx, sns.Config{TopicARN: *nf.topicARN})
		if err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		deps.SNS = pub
	}
	n, err := notify.New(notify.Config{Policy: policy, Timeout: *nf.timeout, TopicARN: *nf.topicARN, Bucket: *nf.bucket, Logger: p.logger}, deps)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	p.health.add("notifier", func(context.Context) error {
		if _, ok := n.Processed(); !ok {
			return errors.New("notifier starting")
		}
		return nil
	})
	p.actor("notifier", n.Run)
	return nil
}

// webhookKeyFile names the key file an embedded event log keeps beside
// it.
const webhookKeyFile = "webhook.key"

// webhookKey returns where the webhook key comes from: the key given
// (PICKUP_WEBHOOK_KEY), or else the file webhook.key beside an embedded
// event log, made with a new random key when create is set (by `pickup
// webhooks add`). The file is read when first needed, so that a notifier
// started before the first webhook finds the key made after.
func webhookKey(given, logAt string, create bool) (func() ([]byte, error), error) {
	if given != "" {
		k, err := parseWebhookKey(given)
		if err != nil {
			return nil, fmt.Errorf("%w: PICKUP_WEBHOOK_KEY: %v", errUsage, err)
		}
		return func() ([]byte, error) { return k, nil }, nil
	}
	if strings.Contains(logAt, "://") {
		if create {
			return nil, fmt.Errorf("%w: set PICKUP_WEBHOOK_KEY (--webhook-key: 64 hex digits or a string of at least 32 bytes, the same for every projector): with a remote event log there is no key file", errUsage)
		}
		return func() ([]byte, error) {
			return nil, errors.New("no webhook key: set PICKUP_WEBHOOK_KEY to the key `pickup webhooks add` used")
		}, nil
	}
	path := filepath.Join(filepath.Dir(strings.TrimPrefix(logAt, "file:")), webhookKeyFile)
	if create {
		if err := makeKeyFile(path); err != nil {
			return nil, err
		}
	}
	var mu sync.Mutex
	var key []byte
	return func() ([]byte, error) {
		mu.Lock()
		defer mu.Unlock()
		if key != nil {
			return key, nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read webhook key: %w", err)
		}
		if key, err = notify.ParseKey(string(b)); err != nil {
			return nil, fmt.Errorf("webhook key file %s: %w", path, err)
		}
		return key, nil
	}, nil
}

// minWebhookKeyString is the shortest webhook key given as a string: as
// many bytes as the key (Terraform's random_password of 32 or more
// characters).
const minWebhookKeyString = notify.KeySize

// parseWebhookKey reads PICKUP_WEBHOOK_KEY: 64 hex digits are the key
// itself (as `pickup webhooks add` writes it, so existing webhooks keep
// verifying); any other string of at least 32 bytes, surrounding
// whitespace left out, gives the key SHA-256(string), so that Terraform can
// generate it into Secrets Manager. A shorter string is refused, and so is
// a string of hex digits only that is not 64 of them: a hex key cut or
// lengthened by mistake, never hashed into another key.
func parseWebhookKey(given string) ([]byte, error) {
	if k, err := notify.ParseKey(given); err == nil {
		return k, nil
	}
	s := strings.TrimSpace(given)
	if _, err := hex.DecodeString(s); err == nil || strings.Trim(s, "0123456789abcdefABCDEF") == "" {
		return nil, fmt.Errorf("webhook key of %d hex digits: want %d (or a string of at least %d bytes that is not hex)", len(s), 2*notify.KeySize, minWebhookKeyString)
	}
	if len(s) < minWebhookKeyString {
		return nil, fmt.Errorf("webhook key of %d bytes: want %d hex digits, or a string of at least %d bytes", len(s), 2*notify.KeySize, minWebhookKeyString)
	}
	k := sha256.Sum256([]byte(s))
	return k[:], nil
}

// makeKeyFile writes a new random key to path, readable by its owner only,
// unless the file exists. The key is written whole to a temporary file
// first, then linked into place, so that nobody reads half a key and two
// commands at once agree on one.
func makeKeyFile(path string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	k, err := notify.NewKey()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("make webhook key: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".webhook.key-*")
	if err != nil {
		return fmt.Errorf("make webhook key: %w", err)
	}
	defer os.Remove(f.Name())
	_, err = f.WriteString(k + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Link(f.Name(), path)
	}
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("make webhook key: %w", err)
	}
	return nil
}

// Package sns publishes pickup's CAR messages on an Amazon SNS topic, for
// deployments that index the carpark (as Elastic IPFS does for
// web3-storage's): one message per CAR validated, with its bucket, key,
// root CID and CAR CID.
//
// Retries are the notifier's (package notify), not the SDK's: the client
// makes one try per attempt, and the notifier records each attempt and its
// backoff in the log. Every attempt of one delivery carries the same
// delivery id, as the message attribute "pickup-delivery-id" and, on a
// FIFO topic, as the deduplication id, so that SNS itself drops a repeat
// within its five-minute window.
package sns

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/config"
	awssns "github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sns/types"
	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/internal/awsconfig"
	"github.com/pickup-ipfs/pickup/notify"
)

// AttributeID is the message attribute that carries the delivery id.
const AttributeID = "pickup-delivery-id"

// Config says where to publish.
type Config struct {
	// TopicARN is the topic (PICKUP_NOTIFY_TOPIC_ARN).
	TopicARN string
	// Region defaults to the topic's.
	Region string
	// Endpoint replaces AWS's endpoint (tests, SNS-compatible services).
	Endpoint string
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	a, err := arn.Parse(c.TopicARN)
	if err != nil || a.Service != "sns" || a.Resource == "" {
		return fmt.Errorf("%w: SNS topic %q is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)", notify.ErrInvalid, c.TopicARN)
	}
	return nil
}

// Publisher publishes CarMessages on one topic. It is safe for concurrent
// use.
type Publisher struct {
	client *awssns.Client
	topic  string
	fifo   bool
}

// New returns a publisher using the default AWS configuration (the
// environment, the task role) in the topic's region.
func New(ctx context.Context, cfg Config) (*Publisher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	region := cfg.Region
	if region == "" {
		a, _ := arn.Parse(cfg.TopicARN)
		region = a.Region
	}
	awsCfg, err := awsconfig.Load(ctx, config.WithRegion(region), config.WithRetryMaxAttempts(1))
	if err != nil {
		return nil, err
	}
	client := awssns.NewFromConfig(awsCfg, func(o *awssns.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
	})
	return NewWithClient(client, cfg.TopicARN)
}

// NewWithClient returns a publisher on topic through client. Give the
// client RetryMaxAttempts 1: the notifier retries.
func NewWithClient(client *awssns.Client, topic string) (*Publisher, error) {
	if err := (Config{TopicARN: topic}).Validate(); err != nil {
		return nil, err
	}
	return &Publisher{client: client, topic: topic, fifo: strings.HasSuffix(topic, ".fifo")}, nil
}

// Publish publishes m as JSON, with the delivery id as an attribute (and as
// the deduplication id on a FIFO topic, where the root CID is the message
// group).
func (p *Publisher) Publish(ctx context.Context, id uuid.UUID, m notify.CarMessage) error {
	body, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode CAR message: %w", err)
	}
	in := &awssns.PublishInput{
		TopicArn: aws.String(p.topic),
		Message:  aws.String(string(body)),
		MessageAttributes: map[string]types.MessageAttributeValue{
			AttributeID: {DataType: aws.String("String"), StringValue: aws.String(id.String())},
		},
	}
	if p.fifo {
		in.MessageDeduplicationId = aws.String(id.String())
		in.MessageGroupId = aws.String(m.RootCID)
	}
	if _, err := p.client.Publish(ctx, in); err != nil {
		return fmt.Errorf("publish to %s: %w", p.topic, err)
	}
	return nil
}

package revsqs_test

import (
	"context"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/memstore"
	"github.com/revguard/revguard/contrib/revsqs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	standardARN = "arn:aws:sqs:eu-west-1:123456789012:prices"
	fifoARN     = "arn:aws:sqs:eu-west-1:123456789012:prices.fifo"
)

// message is an SQS message as Lambda delivers it, with the entity key and
// revision in the attributes "entity" and "revision".
func message(arn, id, key, rev string) events.SQSMessage {
	return events.SQSMessage{
		MessageId:      id,
		ReceiptHandle:  "receipt-" + id,
		Body:           key + "@" + rev,
		EventSourceARN: arn,
		EventSource:    "aws:sqs",
		Attributes:     map[string]string{"ApproximateReceiveCount": "1"},
		MessageAttributes: map[string]events.SQSMessageAttribute{
			"entity":   {StringValue: &key, DataType: "String"},
			"revision": {StringValue: &rev, DataType: "Number"},
		},
	}
}

// inGroup is a FIFO message of a message group.
func inGroup(group, id, key, rev string) events.SQSMessage {
	m := message(fifoARN, id, key, rev)
	m.Attributes["MessageGroupId"] = group
	m.Attributes["SequenceNumber"] = "1857" + id
	return m
}

func newGuard(opts ...revguard.Option) *revguard.Guard[events.SQSMessage] {
	return revguard.New(memstore.New(), revsqs.Attributes("entity", "revision"), opts...)
}

// recorder is a handler that notes the bodies it ran, and fails those
// listed in fail with the error given.
type recorder struct {
	mu   sync.Mutex
	ran  []string
	fail map[string]error
}

func (r *recorder) handle(_ context.Context, m events.SQSMessage) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ran = append(r.ran, m.Body)
	return r.fail[m.Body]
}

func (r *recorder) bodies() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.ran...)
}

// reported returns the MessageIds the response asks SQS to redeliver.
func reported(t *testing.T, resp events.SQSEventResponse, err error) []string {
	t.Helper()
	require.NoError(t, err, "a Lambda error would redeliver the whole batch")
	ids := []string{}
	for _, f := range resp.BatchItemFailures {
		ids = append(ids, f.ItemIdentifier)
	}
	return ids
}

// assertApplied checks the entity's stored revision; rev "" means none.
func assertApplied(t *testing.T, g *revguard.Guard[events.SQSMessage], key, rev string) {
	t.Helper()
	got, ok, err := g.Applied(context.Background(), key)
	require.NoError(t, err)
	if rev == "" {
		assert.False(t, ok, "%s has applied revision %s, want none", key, got)
		return
	}
	if assert.True(t, ok, "%s has nothing applied, want %s", key, rev) {
		assert.Equal(t, rev, got.String(), key)
	}
}

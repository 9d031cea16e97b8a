package revsqs_test

import (
	"context"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/revguard/revguard/contrib/revsqs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// startable compiles only for a handler lambda.StartHandlerFunc accepts,
// the signature check lambda.Start makes when it starts.
func startable[TIn, TOut any, H lambda.HandlerFunc[TIn, TOut]](H) {}

// The handler is one Lambda starts, and it reads and answers the JSON the
// Lambda service exchanges with it.
func TestLambdaInvoke(t *testing.T) {
	g := newGuard()
	rec := &recorder{}
	handler := revsqs.Handler(g, rec.handle)
	startable[events.SQSEvent, events.SQSEventResponse](handler)

	const event = `{"Records": [
	  {"messageId": "m1", "receiptHandle": "r1", "body": "price", "eventSource": "aws:sqs",
	   "eventSourceARN": "arn:aws:sqs:us-west-2:123456789012:prices",
	   "attributes": {"ApproximateReceiveCount": "1"},
	   "messageAttributes": {
	     "entity": {"stringValue": "product:42", "stringListValues": [], "binaryListValues": [], "dataType": "String"},
	     "revision": {"stringValue": "3", "stringListValues": [], "binaryListValues": [], "dataType": "Number"}}},
	  {"messageId": "m2", "receiptHandle": "r2", "body": "price", "eventSource": "aws:sqs",
	   "eventSourceARN": "arn:aws:sqs:us-west-2:123456789012:prices",
	   "messageAttributes": {
	     "revision": {"stringValue": "4", "stringListValues": [], "binaryListValues": [], "dataType": "Number"}}}
	]}`
	out, err := lambda.NewHandler(handler).Invoke(context.Background(), []byte(event))
	require.NoError(t, err)
	assert.JSONEq(t, `{"batchItemFailures": [{"itemIdentifier": "m2"}]}`, string(out))
	assertApplied(t, g, "product:42", "3")
}

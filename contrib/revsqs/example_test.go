package revsqs_test

import (
	"context"
	"fmt"

	"github.com/aws/aws-lambda-go/events"
	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/memstore"
	"github.com/revguard/revguard/contrib/revsqs"
)

func ExampleHandler() {
	// snippet:sqs-handler
	g := revguard.New(memstore.New(), revsqs.Attributes("entity", "revision"))
	handler := revsqs.Handler(g, func(ctx context.Context, m events.SQSMessage) error {
		fmt.Println("apply", m.Body)
		return nil
	})
	// In a Lambda function: lambda.Start(handler)
	// snippet:end

	attrs := func(key, rev string) map[string]events.SQSMessageAttribute {
		return map[string]events.SQSMessageAttribute{
			"entity":   {DataType: "String", StringValue: &key},
			"revision": {DataType: "Number", StringValue: &rev},
		}
	}
	resp, err := handler(context.Background(), events.SQSEvent{Records: []events.SQSMessage{
		{MessageId: "1", Body: "price 999", MessageAttributes: attrs("product:42", "2")},
		{MessageId: "2", Body: "price 999", MessageAttributes: attrs("product:42", "2")}, // sent twice
		{MessageId: "3", Body: "price 950", MessageAttributes: attrs("product:42", "1")}, // older
		{MessageId: "4", Body: "no revision", MessageAttributes: attrs("product:7", "")},
	}})
	if err != nil {
		panic(err) // never: an error would redeliver the whole batch
	}
	for _, f := range resp.BatchItemFailures {
		fmt.Println("redeliver", f.ItemIdentifier)
	}
	// Output:
	// apply price 999
	// redeliver 4
}

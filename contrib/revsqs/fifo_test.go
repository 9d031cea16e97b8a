package revsqs_test

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/revguard/revguard/contrib/revsqs"
	"github.com/stretchr/testify/assert"
)

func fifoBatch() events.SQSEvent {
	return events.SQSEvent{Records: []events.SQSMessage{
		inGroup("g1", "m1", "A", "1"),
		inGroup("g2", "m2", "B", "1"), // fails
		inGroup("g1", "m3", "A", "2"),
		inGroup("g2", "m4", "B", "2"),
		inGroup("g3", "m5", "C", "1"),
		inGroup("g1", "m6", "A", "2"), // a redelivery of m3
	}}
}

// On a FIFO queue the batch stops at the first failure: that message and
// every later one are reported, and the later ones never run.
func TestFIFOStopsAtFirstFailure(t *testing.T) {
	g := newGuard()
	rec := &recorder{fail: map[string]error{"B@1": errors.New("timeout")}}
	resp, err := revsqs.Handler(g, rec.handle)(context.Background(), fifoBatch())

	assert.Equal(t, []string{"m2", "m3", "m4", "m5", "m6"}, reported(t, resp, err))
	assert.Equal(t, []string{"A@1", "B@1"}, rec.bodies())
	assertApplied(t, g, "A", "1")
	assertApplied(t, g, "B", "")
	assertApplied(t, g, "C", "")
}

// In order means every revision runs, one after another, where a standard
// queue's batch would run only each entity's newest.
func TestFIFOInOrder(t *testing.T) {
	g := newGuard()
	rec := &recorder{}
	resp, err := revsqs.Handler(g, rec.handle)(context.Background(), fifoBatch())

	assert.Empty(t, reported(t, resp, err))
	assert.Equal(t, []string{"A@1", "B@1", "A@2", "B@2", "C@1"}, rec.bodies(), "m6 is a duplicate of m3")
}

// SkipGroupOnError reports only the rest of the failing message's group
// and goes on with the others.
func TestFIFOSkipGroupOnError(t *testing.T) {
	g := newGuard()
	rec := &recorder{fail: map[string]error{"B@1": errors.New("timeout")}}
	resp, err := revsqs.Handler(g, rec.handle, revsqs.SkipGroupOnError())(context.Background(), fifoBatch())

	assert.Equal(t, []string{"m2", "m4"}, reported(t, resp, err))
	assert.Equal(t, []string{"A@1", "B@1", "A@2", "C@1"}, rec.bodies())
	assertApplied(t, g, "A", "2")
	assertApplied(t, g, "B", "")
	assertApplied(t, g, "C", "1")
}

// SkipGroupOnError leaves a standard queue's batch as it is.
func TestSkipGroupOnErrorStandard(t *testing.T) {
	g := newGuard()
	rec := &recorder{fail: map[string]error{"B@2": errors.New("timeout")}}
	batch := fifoBatch()
	for i := range batch.Records {
		batch.Records[i].EventSourceARN = standardARN
	}
	resp, err := revsqs.Handler(g, rec.handle, revsqs.SkipGroupOnError())(context.Background(), batch)

	assert.Equal(t, []string{"m2", "m4"}, reported(t, resp, err), "only B's newest runs, and B@1 shares its failure")
	assert.ElementsMatch(t, []string{"A@2", "B@2", "C@1"}, rec.bodies())
}

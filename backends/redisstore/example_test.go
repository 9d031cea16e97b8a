package redisstore_test

import (
	"context"
	"fmt"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/redisstore"
)

type event struct {
	Key string
	Rev revguard.Revision
}

func Example() {
	srv, err := miniredis.Run() // a real deployment passes its own client
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	ctx := context.Background()

	guard := revguard.New(redisstore.New(rdb), func(e event) (string, revguard.Revision, error) { return e.Key, e.Rev, nil })
	for _, e := range []event{{"order:1", 2}, {"order:1", 2}, {"order:1", 1}, {"order:1", 3}} {
		out, err := guard.Handle(ctx, e, func(ctx context.Context, e event) error {
			fmt.Println("handling", e.Key, "revision", e.Rev)
			return nil
		})
		fmt.Println(out, err)
	}
	// What an operator sees with redis-cli HGET 'revguard:{:order:1}' rev:
	fmt.Println(rdb.HGet(ctx, "revguard:{:order:1}", "rev").Val())
	// Output:
	// handling order:1 revision 2
	// applied <nil>
	// duplicate <nil>
	// stale <nil>
	// handling order:1 revision 3
	// applied <nil>
	// 3
}

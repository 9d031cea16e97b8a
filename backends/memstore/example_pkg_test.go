package memstore_test

import (
	"context"
	"fmt"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/memstore"
)

// Example shares one store between two consumers of the same events, each
// with its own namespace: each applies the event once, and neither's
// progress hides the event from the other.
func Example() {
	type UserRenamed struct {
		User string
		Rev  revguard.Revision
	}
	extract := func(e UserRenamed) (string, revguard.Revision, error) { return e.User, e.Rev, nil }

	store := memstore.New() // one per process, shared by its guards
	mail := revguard.New(store, extract, revguard.WithNamespace("mail"))
	search := revguard.New(store, extract, revguard.WithNamespace("search"))

	ctx := context.Background()
	e := UserRenamed{"user:1", 5}
	for _, c := range []struct {
		name string
		g    *revguard.Guard[UserRenamed]
	}{{"mail", mail}, {"search", search}, {"mail", mail}} {
		out, err := c.g.Handle(ctx, e, func(context.Context, UserRenamed) error { return nil })
		fmt.Println(c.name, out, err)
	}
	rev, ok, err := search.Applied(ctx, "user:1")
	fmt.Println("search applied:", rev, ok, err)
	fmt.Println("entities held:", store.Len())
	// Output:
	// mail applied <nil>
	// search applied <nil>
	// mail duplicate <nil>
	// search applied: 5 true <nil>
	// entities held: 2
}

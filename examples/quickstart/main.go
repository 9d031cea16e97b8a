// Quickstart feeds a stream with duplicates and out-of-order events through a
// guard on the in-process store, prints each decision, and checks the final
// state against the newest revision of each entity. It needs no server:
//
//	go run ./examples/quickstart
package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/memstore"
)

// PriceUpdated carries a product's whole new price, so the newest wins.
type PriceUpdated struct {
	Product  string
	Revision uint64
	Cents    int
}

func main() {
	// What an at-least-once transport does to a clean stream: deliver some
	// events twice and shuffle them.
	var stream []PriceUpdated
	products := []string{"apple", "pear", "plum"}
	for _, p := range products {
		for r := uint64(1); r <= 4; r++ {
			e := PriceUpdated{Product: p, Revision: r, Cents: int(100*r) + len(p)}
			stream = append(stream, e)
			if r%2 == 0 {
				stream = append(stream, e)
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	rng.Shuffle(len(stream), func(i, j int) { stream[i], stream[j] = stream[j], stream[i] })

	guard := revguard.New(memstore.New(), func(e PriceUpdated) (string, revguard.Revision, error) {
		return revguard.Key("product", e.Product), revguard.Revision(e.Revision), nil
	})

	prices := map[string]int{}
	newest := map[string]PriceUpdated{}
	ctx := context.Background()
	for _, e := range stream {
		if e.Revision > newest[e.Product].Revision {
			newest[e.Product] = e
		}
		out, err := guard.Handle(ctx, e, func(ctx context.Context, e PriceUpdated) error {
			prices[e.Product] = e.Cents
			return nil
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, "not acknowledged:", err)
			os.Exit(1)
		}
		fmt.Printf("%-6s revision %d: %s\n", e.Product, e.Revision, out)
	}

	st := guard.Stats()
	fmt.Printf("\n%d delivered: %d applied, %d duplicate, %d stale\n",
		len(stream), st.Applied, st.Duplicate, st.Stale)
	ok := true
	for _, p := range products {
		e := newest[p]
		rev, _, err := guard.Applied(ctx, revguard.Key("product", p))
		fmt.Printf("%-6s price %d at revision %d\n", p, prices[p], rev)
		if err != nil || prices[p] != e.Cents || uint64(rev) != e.Revision {
			fmt.Fprintf(os.Stderr, "%s: want price %d at revision %d\n", p, e.Cents, e.Revision)
			ok = false
		}
	}
	if !ok {
		os.Exit(1)
	}
}

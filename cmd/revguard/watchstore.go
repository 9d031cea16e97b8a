package main

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/revguard/revguard"
)

// storeView counts a namespace's entities and claims with a scan.
type storeView struct {
	in    revguard.Inspector
	desc  string
	ns    string
	match string
	limit int
}

// soonest is how many claims nearest to expiry watch shows.
const soonest = 5

func (v *storeView) source() string {
	s := fmt.Sprintf("%s namespace %q", v.desc, v.ns)
	if v.match != "" {
		s += fmt.Sprintf(" keys %q", v.match)
	}
	return s
}

func (v *storeView) poll(ctx context.Context) (frame, error) {
	var n, claims int
	var near []revguard.Entity
	more, err := scanUpTo(ctx, v.in, v.ns, v.match, v.limit, func(e revguard.Entity) error {
		n++
		if e.Claim != nil {
			claims++
			near = append(near, e)
			slices.SortFunc(near, func(a, b revguard.Entity) int { return compareLeft(a.Claim.Left, b.Claim.Left) })
			near = near[:min(len(near), soonest)]
		}
		return nil
	})
	if err != nil {
		return frame{}, fmt.Errorf("scan: %w", explain(err))
	}
	count := strconv.Itoa(n)
	if more {
		count += "+" // stopped at -limit
	}
	fields := []string{"entities=" + count, "claims=" + strconv.Itoa(claims)}
	for _, e := range near {
		fields = append(fields, fmt.Sprintf("claim=%s@%s:%s", strconv.Quote(e.Key), e.Claim.Rev, leaseLeft(e.Claim.Left)))
	}

	var b strings.Builder
	fmt.Fprintf(&b, "entities  %s\nclaims    %d\n", count, claims)
	if len(near) > 0 {
		fmt.Fprintf(&b, "\nclaims nearest to expiry (a live holder renews at two thirds left):\n")
		t := newTable(&b, true)
		for _, e := range near {
			_ = t.write(e)
		}
		_ = t.flush()
	}
	return frame{line: joinFields(fields...), screen: b.String()}, nil
}

// compareLeft orders leases by time left, those held until committed
// (0, in-process stores) last.
func compareLeft(a, b time.Duration) int {
	if a == 0 {
		a = 1<<63 - 1
	}
	if b == 0 {
		b = 1<<63 - 1
	}
	return cmp.Compare(a, b)
}

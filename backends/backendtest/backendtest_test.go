package backendtest_test

import (
	"context"
	"sync"
	"testing"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/backendtest"
	"github.com/revguard/revguard/backends/memstore"
)

// TestTransactional runs the suite's Transactional checks, which no store in
// this module can run without a database server, against memstore with
// transactions faked by one lock and an undo.
func TestTransactional(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) revguard.Store {
		return &txStore{Store: memstore.New()}
	}, backendtest.Features{Transactions: true})
}

type txStore struct {
	*memstore.Store
	mu sync.Mutex // a database's row lock, made coarse
}

var _ revguard.Transactor = (*txStore)(nil)

func (s *txStore) Transact(ctx context.Context, req revguard.Request, fn func(context.Context) error) (revguard.Reply, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	before, err := s.Peek(ctx, req.Namespace, req.Key)
	if err != nil {
		return revguard.Reply{}, err
	}
	res, err := s.Claim(ctx, req)
	if err != nil || res.Verdict != revguard.Granted {
		return res, err
	}
	committed := false
	defer func() {
		if committed {
			return
		}
		ctx := context.WithoutCancel(ctx)
		if before.Exists {
			_ = s.Set(ctx, req.Namespace, req.Key, before.Applied)
		} else {
			_ = s.Forget(ctx, req.Namespace, req.Key)
		}
	}()
	if err := fn(ctx); err != nil {
		return res, err
	}
	committed = true
	return res, nil
}

package sqlstore

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/tokengate/caddy-tokengate/oauth"
)

// One batch, three operations: each keeps or loses its own writes as if it
// were a transaction of its own, and later ones see earlier ones' writes.
func TestSQLiteGrantBatchIsolatesOperations(t *testing.T) {
	s := openSQLiteAt(t, filepath.Join(t.TempDir(), "tokengate.db"))
	insert := func(name string) func(context.Context, *preparedTx) error {
		return func(ctx context.Context, tx *preparedTx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO tokengate_secrets (name, value) VALUES (?, x'00')`, name)
			return err
		}
	}
	failed := errors.New("refused after writing")
	reuse := &oauth.ReuseError{Reused: oauth.ErrRefreshReused}
	var sawFirst bool
	ops := []*grantOp{
		{ctx: context.Background(), fn: insert("kept"), done: make(chan error, 1)},
		{ctx: context.Background(), fn: func(ctx context.Context, tx *preparedTx) error {
			if err := insert("rolled-back")(ctx, tx); err != nil {
				return err
			}
			return failed
		}, done: make(chan error, 1)},
		{ctx: context.Background(), fn: func(ctx context.Context, tx *preparedTx) error {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM tokengate_secrets WHERE name = 'kept'`).Scan(&n); err != nil {
				return err
			}
			sawFirst = n == 1
			if err := insert("reuse-revocation")(ctx, tx); err != nil {
				return err
			}
			return reuse
		}, done: make(chan error, 1)},
	}
	runGrantOpsNow(s, ops...)
	if err := <-ops[0].done; err != nil {
		t.Errorf("first operation: %v", err)
	}
	if err := <-ops[1].done; !errors.Is(err, failed) {
		t.Errorf("second operation: %v, want its own error", err)
	}
	if err := <-ops[2].done; !errors.As(err, &reuse) {
		t.Errorf("third operation: %v, want the ReuseError", err)
	}
	if !sawFirst {
		t.Error("the third operation did not see the first one's write")
	}
	for name, want := range map[string]int{"kept": 1, "rolled-back": 0, "reuse-revocation": 1} {
		var n int
		if err := s.db.QueryRow(`SELECT count(*) FROM tokengate_secrets WHERE name = ?`, name).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != want {
			t.Errorf("rows named %q = %d, want %d", name, n, want)
		}
	}
}

// An operation whose caller has gone is not run at all.
func TestSQLiteGrantBatchSkipsCanceledCaller(t *testing.T) {
	s := openSQLiteAt(t, filepath.Join(t.TempDir(), "tokengate.db"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ran := false
	op := &grantOp{ctx: ctx, fn: func(context.Context, *preparedTx) error { ran = true; return nil }, done: make(chan error, 1)}
	runGrantOpsNow(s, op)
	if err := <-op.done; !errors.Is(err, context.Canceled) || ran {
		t.Fatalf("canceled caller: err %v, ran %v", err, ran)
	}
}

// Close may be called twice, before or after any grant operation, and a
// grant operation after Close is refused instead of waiting forever.
func TestSQLiteCloseStopsGrantOperations(t *testing.T) {
	for _, used := range []bool{false, true} {
		s, err := OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "tokengate.db"))
		if err != nil {
			t.Fatal(err)
		}
		if used {
			if _, err := s.ExchangeCode(context.Background(), oauth.TokenHash{1}, testTime, nil, oauth.IssuedPair{}); !errors.Is(err, oauth.ErrNotFound) {
				t.Fatalf("unknown code: %v", err)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s.Close()
		if _, err := s.ExchangeCode(context.Background(), oauth.TokenHash{1}, testTime, nil, oauth.IssuedPair{}); !errors.Is(err, errStoreClosed) {
			t.Fatalf("after Close (used %v): %v, want errStoreClosed", used, err)
		}
	}
}

// runGrantOpsNow runs ops as one batch on a writer connection of their own,
// without the committer goroutine.
func runGrantOpsNow(s *SQLite, ops ...*grantOp) {
	var w writerConn
	defer w.close()
	defer s.lockWrites()()
	s.runGrantOps(&w, ops)
}

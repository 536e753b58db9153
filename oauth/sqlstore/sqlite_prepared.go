package sqlstore

import (
	"context"
	"database/sql"
	"sync"
)

// preparedStatements prepares each query text once per database and keeps
// it: parsing SQL was a fifth of a refresh rotation's cost. database/sql
// then prepares a statement once on each pooled connection and reuses it.
type preparedStatements struct {
	db    *sql.DB
	stmts sync.Map // query text → *sql.Stmt; read on every query, written once each
}

// get returns the statement for query, preparing it on first use. The
// queries are constants of this package, so the map stays small.
func (p *preparedStatements) get(query string) (*sql.Stmt, error) {
	if st, ok := p.stmts.Load(query); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := p.db.PrepareContext(context.Background(), query)
	if err != nil {
		return nil, err
	}
	if prev, loaded := p.stmts.LoadOrStore(query, st); loaded {
		st.Close() // another caller prepared it first
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}

// ExecContext runs query outside a transaction.
func (p *preparedStatements) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, err := p.get(query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

// QueryRowContext runs query outside a transaction.
func (p *preparedStatements) QueryRowContext(ctx context.Context, query string, args ...any) row {
	st, err := p.get(query)
	if err != nil {
		return p.db.QueryRowContext(ctx, query, args...) // reports the same error
	}
	return st.QueryRowContext(ctx, args...)
}

// QueryContext runs query outside a transaction.
func (p *preparedStatements) QueryContext(ctx context.Context, query string, args ...any) (rows, error) {
	st, err := p.get(query)
	if err != nil {
		return nil, err
	}
	r, err := st.QueryContext(ctx, args...)
	if err != nil {
		return nil, err // not a nil *sql.Rows inside a rows
	}
	return r, nil
}

func (p *preparedStatements) close() {
	p.stmts.Range(func(query, st any) bool {
		st.(*sql.Stmt).Close()
		p.stmts.Delete(query)
		return true
	})
}

// preparedTx is a transaction that runs its queries as prepared
// statements.
type preparedTx struct {
	tx    *sql.Tx
	stmts *preparedStatements
}

func (t *preparedTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, err := t.stmts.get(query)
	if err != nil {
		return nil, err
	}
	return t.tx.StmtContext(ctx, st).ExecContext(ctx, args...)
}

func (t *preparedTx) QueryRowContext(ctx context.Context, query string, args ...any) row {
	st, err := t.stmts.get(query)
	if err != nil {
		return t.tx.QueryRowContext(ctx, query, args...) // reports the same error
	}
	return t.tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
}

func (t *preparedTx) QueryContext(ctx context.Context, query string, args ...any) (rows, error) {
	st, err := t.stmts.get(query)
	if err != nil {
		return nil, err
	}
	r, err := t.tx.StmtContext(ctx, st).QueryContext(ctx, args...)
	if err != nil {
		return nil, err // not a nil *sql.Rows inside a rows
	}
	return r, nil
}

// Interface guards
var (
	_ querier = (*preparedStatements)(nil)
	_ querier = (*preparedTx)(nil)
)

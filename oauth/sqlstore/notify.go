package sqlstore

import (
	"context"
	"encoding/hex"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tokengate/caddy-tokengate/oauth"
)

// revocationChannel carries the hex SHA-256 of every token revoked through
// any instance sharing the database (docs/operations.md).
const revocationChannel = "tokengate_revocations"

// listenerApplicationName names the listening session in pg_stat_activity,
// so an operator can tell it from pooled ones.
const listenerApplicationName = "tokengate-revocations"

// Reconnection backoff for the listening connection: quick enough that a
// server restart costs little, bounded so a long outage is not hammered.
const (
	listenMinBackoff = 100 * time.Millisecond
	listenMaxBackoff = 5 * time.Second
	// listenConnectTimeout bounds one connection attempt, since the
	// watcher's own context lives as long as the instance.
	listenConnectTimeout = 10 * time.Second
	// listenPingInterval is how long the listener waits in silence before
	// checking its connection: a connection dropped by the network sends
	// no error, and every revocation missed meanwhile would go unnoticed.
	listenPingInterval = 30 * time.Second
	listenPingTimeout  = 5 * time.Second
)

// notifyRevoked tells the other instances that h is revoked. pg_notify in
// the revoking transaction is delivered only when it commits.
func notifyRevoked(ctx context.Context, tx querier, h oauth.TokenHash) error {
	_, err := tx.ExecContext(ctx, `SELECT pg_notify($1, $2)`, revocationChannel, hex.EncodeToString(h[:]))
	return err
}

// WatchRevocations implements oauth.Store. It holds one connection outside
// the pool, LISTENing on revocationChannel, and calls forget for each
// revoked hash. Each time a LISTEN takes hold, the first time included, it
// calls reset: whatever was cached before then may have been revoked with
// nobody listening (before the first LISTEN, or while a lost connection
// was being replaced). A lost connection is replaced with backoff.
func (s *Postgres) WatchRevocations(ctx context.Context, forget func(oauth.TokenHash), reset func()) {
	cfg := s.pool.Config().ConnConfig.Copy()
	cfg.RuntimeParams["application_name"] = listenerApplicationName

	backoff := listenMinBackoff
	for {
		conn, err := listen(ctx, cfg)
		if err == nil {
			reset()
			backoff = listenMinBackoff
			receiveRevocations(ctx, conn, s.pingInterval, forget)
			conn.Close(context.Background())
		}
		if ctx.Err() != nil {
			return
		}
		if !sleepContext(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, listenMaxBackoff)
	}
}

// listen opens a connection and subscribes it to revocationChannel.
func listen(ctx context.Context, cfg *pgx.ConnConfig) (*pgx.Conn, error) {
	connectCtx, cancel := context.WithTimeout(ctx, listenConnectTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(connectCtx, cfg)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(connectCtx, "LISTEN "+revocationChannel); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	return conn, nil
}

// receiveRevocations passes each notification on conn to forget until the
// connection fails or ctx is done.
func receiveRevocations(ctx context.Context, conn *pgx.Conn, pingInterval time.Duration, forget func(oauth.TokenHash)) {
	for {
		waitCtx, cancel := context.WithTimeout(ctx, pingInterval)
		n, err := conn.WaitForNotification(waitCtx)
		cancel()
		// A notification can arrive together with the error that ends
		// the connection; it is still a revocation.
		if n != nil {
			if h, ok := parseRevocation(n.Payload); ok {
				forget(h)
			}
		}
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return
		case errors.Is(err, context.DeadlineExceeded) && !conn.IsClosed():
			// Silence: make sure the connection is still there. pgx keeps
			// a connection open after a wait that merely timed out.
			pingCtx, cancel := context.WithTimeout(ctx, listenPingTimeout)
			err := conn.Ping(pingCtx)
			cancel()
			if err != nil {
				return
			}
		default:
			return
		}
	}
}

// parseRevocation decodes a notification payload; anything else on the
// channel is ignored rather than trusted.
func parseRevocation(payload string) (oauth.TokenHash, bool) {
	var h oauth.TokenHash
	if hex.DecodedLen(len(payload)) != len(h) {
		return h, false
	}
	if _, err := hex.Decode(h[:], []byte(payload)); err != nil {
		return h, false
	}
	return h, true
}

// sleepContext waits for d and reports whether ctx is still live.
func sleepContext(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
